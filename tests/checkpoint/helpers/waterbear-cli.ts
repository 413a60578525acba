/** Runs the `waterbear` CLI from the TypeScript sources (for child-process tests under tsx). */
import { runCli } from '../../../cli/main.js';

process.exitCode = await runCli(process.argv.slice(2));
