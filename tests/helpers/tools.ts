import { hasCommand } from '../../chaos/cluster/has-command.js';

/** True when `cmd` is on PATH. */
export const hasTool = hasCommand;

/**
 * Decide whether a test that needs an optional tool runs. Missing tools skip with a printed
 * reason locally; in CI (WB_REQUIRE_TOOLS=1) the test runs and fails, so nothing is skipped silently.
 */
export function toolAvailable(cmd: string, why: string): boolean {
  if (hasTool(cmd)) return true;
  if (process.env.WB_REQUIRE_TOOLS === '1') return true;
  console.log(`skipping: ${cmd} is not installed (${why}); .ci/run installs it`);
  return false;
}
