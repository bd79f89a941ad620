/**
 * Route schemas compiled on first use instead of at start-up. fastify compiles every route's params,
 * querystring and body schema with ajv when the app becomes ready: with ~60 routes that, and ajv compiling
 * its draft-07 meta-schema first, was ~0.3 s of the main thread's start (issue 15: serve at 10,000
 * machines starts in <= 2 s). Each validator is now compiled by the first request that needs it (a few
 * milliseconds for these small schemas); the route schemas are ours, so ajv does not check them against
 * its meta-schema (test/integration/http/lazy-validators.test.ts compiles and meta-checks every one).
 * Same ajv and options as fastify's default compiler (@fastify/ajv-compiler), created on first use too.
 * No route declares a `headers` schema: fastify leaves those as given when the compiler is custom, as
 * this one is (instead of lower-casing their keys), so one added later must use lower-case names.
 */
import { createRequire } from 'node:module';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

interface Validator { (data: unknown, cxt?: unknown): unknown; errors?: unknown; schemaEnv?: unknown }
type Compile = (args: { schema: unknown; method?: string; url?: string; httpPart?: string }) => Validator;
type BuildValidator = (externalSchemas: Record<string, unknown>, options: { customOptions?: Record<string, unknown> } & Record<string, unknown>) => Compile;

/** The compiler pool fastify uses by default, from fastify's own dependencies (not one of ours). */
function fastifyAjvCompiler(): BuildValidator {
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  return (fromFastify('@fastify/ajv-compiler') as () => BuildValidator)();
}

/** Validators not compiled yet (with their schema), for a test that compiles every one (compilePending). */
const pending = new Map<() => void, unknown>();

/** A fastify `schemaController.compilersFactory.buildValidator` whose validators compile on first call. */
let pool: BuildValidator | undefined;

export function lazyValidators(): BuildValidator {
  return (externalSchemas, options) => {
    const opts = { ...options, customOptions: { ...options.customOptions, validateSchema: false } };
    let compiler: Compile | undefined;
    return (args) => {
      let fn: Validator | undefined;
      const compile = () => {
        pool ??= fastifyAjvCompiler();
        compiler ??= pool(externalSchemas, opts);
        fn ??= compiler(args);
        pending.delete(compile);
        return fn;
      };
      pending.set(compile, args.schema);
      const lazy: Validator = (data, cxt) => {
        const f = compile();
        // fastify reads `errors` off the function it was given, after a call that returned false.
        const ok = f(data, cxt);
        lazy.errors = f.errors;
        return ok;
      };
      // fastify passes the request as parent data (so ajv may coerce the root value) only to functions
      // that have a schemaEnv, as ajv's do; ajv's validators take that second argument either way.
      lazy.schemaEnv = true;
      return lazy;
    };
  };
}

/**
 * Once the server listens: loads the compiler, then compiles the validators not compiled yet, each in
 * its own event-loop turn, so the first request of a route neither compiles nor stalls the loop for it
 * (the compiler's first use was ~0.1 s in one go on a busy host).
 */
export async function warmValidators(): Promise<void> {
  await yieldToLoop();
  pool ??= fastifyAjvCompiler();
  for (const c of [...pending.keys()]) {
    await yieldToLoop();
    c();
  }
}

/**
 * Compiles every validator not compiled yet and returns their schemas (tests: a broken route schema
 * fails there, not on a request in production).
 */
export function compilePending(): unknown[] {
  const list = [...pending];
  for (const [c] of list) c();
  return list.map(([, schema]) => schema);
}
