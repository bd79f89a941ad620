/** Writes docs/errors.md from the error catalogue (src/errors.ts): `npx tsx scripts/errors-doc.ts`. */
import { writeFileSync } from 'node:fs';
import { ERRORS } from '../src/errors.js';

const rows = Object.entries(ERRORS).sort(([a], [b]) => a.localeCompare(b))
  .map(([code, s]) => `| ${code} | ${s.status} | ${s.exit} | ${s.meaning} | ${s.fix.replace(/\|/g, '\\|')} |`);
writeFileSync(new URL('../docs/errors.md', import.meta.url), [
  '# Error codes',
  '',
  'Every error rolecast reports carries one of these codes: the API answers `{ code, message, fix }` with the',
  'HTTP status below, the CLI prints the message and exits with the exit code below (2: usage error, 3: a BMC failed or',
  'did not answer, 1: any other failure). The table is the catalogue in `src/errors.ts`; `test/unit/errors.test.ts` checks that the',
  'two agree (regenerate with `npx tsx scripts/errors-doc.ts`).',
  '',
  '| code | HTTP | exit | meaning | what to do |',
  '|---|---|---|---|---|',
  ...rows,
  '',
].join('\n'));
