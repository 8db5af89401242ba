/**
 * How the process of a moleshop node is started: the Node.js flags every launcher gives it.
 * scripts/cluster.ts, the bench (scripts/bench/processes.ts) and the tests' process helper use these
 * values; package.json's `broker` and `repl` scripts and the Dockerfile spell them out, and
 * test/unit/deployment.spec.ts checks that they say the same.
 *
 * Measured for issue 10 (one node under 250 MB RSS after 10,000 orders and 100,000 product views), and
 * left at V8's and glibc's defaults:
 * - No `--max-semi-space-size`. V8 sizes the young generation from the heap limit (128 MB of new
 *   space on a 24 GB machine); 16 MB semi-spaces saved about 95 MB of RSS (321 against 416 MB in the
 *   memory phase), but on the bench's seeded store (100,000 orders, 20,000 products: a heap of about
 *   1.4 GB) search and page answered 0.42x and 0.55x the empty shop's rate with a p99 six times
 *   higher, where the default sizing keeps them at 0.86x and 0.99x.
 * - No malloc setting. glibc keeps the 19 MiB work area of each argon2 hash (services/users; one per
 *   thread of libuv's pool that ever hashed) for the next hash: about 80 MB of RSS after a few sign-ups.
 *   A fixed `MALLOC_MMAP_THRESHOLD_` gives each area back when freed (with 16 MB semi-spaces the memory
 *   phase then read 237 MB instead of 311-361), but every hash then faults in 19 MiB of fresh pages: the shop mix, with 3%
 *   logins, fell from 1,283 to 317 requests/s on one node (1.4 -> 5.9 CPU ms per request).
 */

/** Node.js flags of every moleshop node (before moleculer-runner in its command line). */
export const NODE_FLAGS: readonly string[] = [
	// moleculer-db's NeDB adapter promisifies NeDB methods that already return promises (see README).
	"--disable-warning=DEP0174",
];

/** The command-line arguments of a node: its flags, moleculer-runner (`runner`), the broker options file (`config`). */
export const nodeArgs = (runner: string, config: string): string[] => [...NODE_FLAGS, runner, "--config", config];
