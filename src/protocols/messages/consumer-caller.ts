import type { Principal } from '../../auth/authorizer.js';
import { RelayError } from '../../hub/errors.js';
import type { ConsumerCaller } from '../../hub/consumers.js';

/**
 * Who acts on a consumer. On a hub that verifies subscriber tokens a consumer belongs to the
 * token's subject, so a token without `sub` (or no token, with `--anonymous`) may not use one:
 * HUB_ERR_CONSUMER_FORBIDDEN. Without subscriber keys, consumers belong to nobody.
 */
export function consumerCaller(principal: Principal): ConsumerCaller {
  if (principal.kind === 'open') return { subject: null };
  if (principal.subject === undefined) {
    throw new RelayError('HUB_ERR_CONSUMER_FORBIDDEN', 'A consumer needs a token with a subject (sub): it belongs to that subject');
  }
  return { subject: principal.subject };
}
