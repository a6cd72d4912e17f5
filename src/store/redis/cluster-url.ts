/** The seed nodes and credentials of a `redis-cluster://` URL. */
export interface ClusterAddress {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

export const CLUSTER_SCHEME = 'redis-cluster://';

/** True for `redis-cluster://` URLs. */
export function isClusterUrl(url: string): boolean {
  return url.startsWith(CLUSTER_SCHEME);
}

/**
 * Reads `redis-cluster://[user[:password]@]host:port[,host:port...]` (seed nodes: the client
 * discovers the rest of the cluster from any of them). Throws an Error without the URL in its
 * message (it may carry a password) when it is malformed.
 */
export function parseClusterUrl(url: string): ClusterAddress {
  if (!isClusterUrl(url)) throw new Error(`expected ${CLUSTER_SCHEME}host:port[,host:port...]`);
  let rest = url.slice(CLUSTER_SCHEME.length);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? undefined : rest.slice(0, at);
  const hosts = at < 0 ? rest : rest.slice(at + 1);
  const nodes = hosts.split(',').map((hostPort) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]@,]+):([0-9]{1,5})$/.exec(hostPort.trim());
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new Error(`expected ${CLUSTER_SCHEME}host:port[,host:port...]; a seed node is not host:port`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
  if (userinfo === undefined) return { nodes };
  const colon = userinfo.indexOf(':');
  const decode = (text: string): string | undefined => (text === '' ? undefined : decodeURIComponent(text));
  return colon < 0 ? { nodes, username: decode(userinfo) } : { nodes, username: decode(userinfo.slice(0, colon)), password: decode(userinfo.slice(colon + 1)) };
}
