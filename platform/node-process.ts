/**
 * How the process of a moleshop node is started: the Node.js flags every launcher gives it.
 * scripts/cluster.ts, the bench (scripts/bench/processes.ts) and the tests' process helper use these
 * values; package.json's `broker` and `repl` scripts and the Dockerfile spell them out, and
 * test/unit/deployment.spec.ts checks that they say the same.
 *
 * Why (issue 10: one node under 250 MB RSS after 10,000 orders and 100,000 product views):
 * - `--max-semi-space-size=16`: V8 sizes the young generation from the heap limit, which it takes
 *   from the machine's memory: 128 MB of new space (two semi-spaces of 64 MB) on a 24 GB machine, all
 *   of it touched and so resident, for a node whose whole live heap is about 110 MB. Two semi-spaces
 *   of 16 MB hold a request's short-lived objects just as well (checkout rates in these runs,
 *   170-360/s with the flag and 230-300/s without on a machine shared with other work, differ by no
 *   more than that noise), and the young generation no longer grows with the machine's memory.
 * - No malloc setting. glibc keeps the 19 MiB work area of each argon2 hash (services/users; one per
 *   thread of libuv's pool that ever hashed) for the next hash: about 80 MB of RSS after a few sign-ups.
 *   A fixed `MALLOC_MMAP_THRESHOLD_` gives each area back when freed (the memory phase then read 237 MB
 *   instead of 311-361), but every hash then faults in 19 MiB of fresh pages: the shop mix, with 3%
 *   logins, fell from 1,283 to 317 requests/s on one node (1.4 -> 5.9 CPU ms per request).
 */

/** Node.js flags of every moleshop node (before moleculer-runner in its command line). */
export const NODE_FLAGS: readonly string[] = [
	// moleculer-db's NeDB adapter promisifies NeDB methods that already return promises (see README).
	"--disable-warning=DEP0174",
	"--max-semi-space-size=16",
];

/** The command-line arguments of a node: its flags, moleculer-runner (`runner`), the broker options file (`config`). */
export const nodeArgs = (runner: string, config: string): string[] => [...NODE_FLAGS, runner, "--config", config];
