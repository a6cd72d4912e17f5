import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/** Where the browser tests save their screenshots (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/** Saves a full-page screenshot as test-artifacts/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A console page and what went wrong on it, as the browser's own console and network log show it. */
export interface ConsolePage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Responses of 400 or more, as `STATUS URL`. */
  readonly failedRequests: string[];
  /** Errors the browser logged (CSP violations among them) and uncaught exceptions. */
  readonly errors: string[];
  /** Content-Security-Policy violations reported to the page (`securitypolicyviolation`). */
  violations(): Promise<string[]>;
}

/**
 * Opens a fresh context and page at the given viewport, recording failed requests, logged
 * errors and CSP violations from the first request on.
 */
export async function openConsolePage(browser: Browser, viewport: { width: number; height: number }): Promise<ConsolePage> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const failedRequests: string[] = [];
  const errors: string[] = [];
  page.on('response', (response) => {
    if (response.status() >= 400) failedRequests.push(`${response.status()} ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  // Injected by the browser's debugging protocol, not by the page: the CSP does not apply to it.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (event) => seen.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  return {
    context,
    page,
    failedRequests,
    errors,
    violations: () => page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations),
  };
}
