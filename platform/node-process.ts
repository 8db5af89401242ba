/**
 * How the process of a moleshop node is started: the Node.js flags and the environment every launcher
 * gives it. scripts/cluster.ts, the bench (scripts/bench/processes.ts) and the tests' process helper use
 * these values; package.json's `broker` and `repl` scripts and the Dockerfile spell them out, and
 * test/unit/deployment.spec.ts checks that they say the same.
 *
 * Why these (issue 10: one node under 250 MB RSS after 10,000 orders and 100,000 product views; the
 * bench's memory phase measured 447 and 476 MB without them, 262 and 258 MB with both, runs taken
 * alternately on one loaded machine):
 * - `--max-semi-space-size=16`: V8 sizes the young generation from the heap limit, which it takes
 *   from the machine's memory: 128 MB of new space (two semi-spaces of 64 MB) on a 24 GB machine, all
 *   of it touched and so resident, for a node whose whole live heap is about 110 MB. Two semi-spaces
 *   of 16 MB hold a request's short-lived objects just as well (checkout rates in these runs,
 *   170-360/s with the flag and 230-300/s without on a machine shared with other work, differ by no
 *   more than that noise), and the young generation no longer grows with the machine's memory.
 * - `MALLOC_MMAP_THRESHOLD_`: glibc's malloc raises its mmap threshold to the size of the largest
 *   block freed so far (up to 32 MB). Each argon2 hash (services/users: 19 MiB of work memory) runs
 *   on a thread of libuv's pool; after the first, every later work area came from that thread's
 *   malloc arena and stayed resident once freed: 4 threads × 19 MiB and the main arena's 21 MB, about
 *   80 MB held after a few sign-ups. A fixed threshold keeps blocks of 1 MiB and more in their own
 *   mappings, given back to the system when freed (one mmap and munmap per hash, next to the 19 MiB
 *   the hash writes anyway). Read by glibc at start; other C libraries ignore it.
 */

/** Node.js flags of every moleshop node (before moleculer-runner in its command line). */
export const NODE_FLAGS: readonly string[] = [
	// moleculer-db's NeDB adapter promisifies NeDB methods that already return promises (see README).
	"--disable-warning=DEP0174",
	"--max-semi-space-size=16",
];

/** Environment variables every moleshop node is started with, on top of its own settings (none is read by the code). */
export const NODE_PROCESS_ENV: Readonly<Record<string, string>> = {
	MALLOC_MMAP_THRESHOLD_: String(1024 * 1024),
};

/** The command-line arguments of a node: its flags, moleculer-runner (`runner`), the broker options file (`config`). */
export const nodeArgs = (runner: string, config: string): string[] => [...NODE_FLAGS, runner, "--config", config];
