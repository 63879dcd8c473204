/** Types of ensure-tools.mjs, for tests that install the one Debian package they need. */
export interface Tool {
  check: string;
  pkg: string;
}
export const TOOLS: Tool[];
export function ensureTools(tools?: Tool[]): void;
