/** A steady, bounded request load: a few workers, each sending one request at a time with a short pause. */

export interface LoadResult {
	ok: number;
	/** One entry per failed request: its HTTP status or error. */
	failures: string[];
	maxLatencyMs: number;
}

export interface Load {
	result: LoadResult;
	/** Stop sending, wait for the requests in flight, and return the tally. */
	stop(): Promise<LoadResult>;
}

/**
 * Run `request` (which resolves with an HTTP status) from `concurrency` workers
 * until `stop()` or `maxMs`. A request counts as failed unless it answers 2xx.
 */
export function steadyLoad(
	request: (signal: AbortSignal) => Promise<number>,
	concurrency = 4,
	maxMs = 120_000,
	pauseMs = 50,
): Load {
	let running = true;
	const started = Date.now();
	const result: LoadResult = { ok: 0, failures: [], maxLatencyMs: 0 };
	const worker = async () => {
		while (running && Date.now() - started < maxMs) {
			const sent = Date.now();
			try {
				const status = await request(AbortSignal.timeout(30_000));
				if (status >= 200 && status < 300) result.ok++;
				else result.failures.push(`HTTP ${status}`);
			} catch (err) {
				result.failures.push(String(err));
			}
			result.maxLatencyMs = Math.max(result.maxLatencyMs, Date.now() - sent);
			await new Promise(resolve => setTimeout(resolve, pauseMs));
		}
	};
	const workers = Array.from({ length: concurrency }, worker);
	return {
		result,
		async stop() {
			running = false;
			await Promise.all(workers);
			return result;
		},
	};
}
