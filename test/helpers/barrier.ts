/**
 * Forcing a race instead of hoping for one: a barrier holds calls at one point
 * of the handler path until all of them have arrived, then lets them all go on
 * together. What each call read before the barrier, every other call read too
 * before any of them wrote: the overlap is certain, not a matter of timing.
 *
 * A barrier never lets a call through early. When not all parties arrive (the
 * code under test no longer reaches that point as often), the held calls fail,
 * so a test cannot pass without its race: at once when `sendEach` sees a
 * request answered before it arrived, otherwise after `timeoutMs`. That timeout
 * is only a bound against hanging: no test depends on how fast anything is.
 */

export interface Barrier {
	readonly parties: number;
	/** How many calls arrived while the barrier was closed. */
	readonly arrived: number;
	/** True once all parties had arrived (and were let go). */
	readonly opened: boolean;
	/** Wait until all parties have arrived; at once when the barrier is already open. */
	wait(): Promise<void>;
	/** Resolves once `count` calls have arrived. */
	reached(count: number): Promise<void>;
	/** Fail the held calls (and any later ones) with `err` instead of letting them go. */
	abort(err: Error): void;
}

/** A barrier for `parties` calls. */
export function barrier(parties: number, timeoutMs = 30_000): Barrier {
	let arrived = 0;
	let opened = false;
	let broken: Error | undefined;
	let timer: NodeJS.Timeout | undefined;
	let release!: () => void;
	let fail!: (err: Error) => void;
	const gate = new Promise<void>((resolve, reject) => {
		release = resolve;
		fail = reject;
	});
	gate.catch(() => undefined); // rejected only to fail the held calls, each of which sees it
	const watchers: Array<{ count: number; resolve: () => void }> = [];

	const abort = (err: Error) => {
		if (opened || broken) return;
		broken = err;
		clearTimeout(timer);
		fail(err);
	};

	return {
		parties,
		get arrived() {
			return arrived;
		},
		get opened() {
			return opened;
		},
		wait() {
			if (opened) return Promise.resolve();
			if (broken) return Promise.reject(broken);
			arrived++;
			if (arrived === parties) {
				opened = true;
				clearTimeout(timer);
				release();
			} else if (!timer) {
				timer = setTimeout(
					() => abort(new Error(`barrier: ${arrived} of ${parties} calls arrived within ${timeoutMs} ms`)),
					timeoutMs,
				);
				timer.unref();
			}
			for (const watcher of watchers.filter(w => w.count <= arrived)) {
				watchers.splice(watchers.indexOf(watcher), 1);
				watcher.resolve();
			}
			return gate;
		},
		reached(count) {
			if (arrived >= count) return Promise.resolve();
			return new Promise<void>(resolve => watchers.push({ count, resolve }));
		},
		abort,
	};
}

/**
 * Make the calls of `target[method]` that `holds(...args)` selects wait at `gate`
 * (the others run as before): before they run, or with `{ after: true }` once
 * they have run, before they answer. Returns the function that puts the method back.
 */
export function holdCalls(
	target: any,
	method: string,
	gate: Barrier,
	holds: (...args: any[]) => boolean,
	{ after = false } = {},
): () => void {
	const own = Object.prototype.hasOwnProperty.call(target, method);
	const original = target[method];
	target[method] = async function (this: unknown, ...args: any[]) {
		const held = holds(...args);
		if (held && !after) await gate.wait();
		const answer = await original.apply(this, args);
		if (held && after) await gate.wait();
		return answer;
	};
	return () => {
		if (own) target[method] = original;
		else delete target[method];
	};
}

/**
 * Send `gate.parties` requests, each once the one before it is held at `gate`,
 * and answer all their answers once the barrier let them go. Held requests wait
 * without working, so up to the barrier the requests do not compete with each
 * other (none times out on a busy machine), and past it they all run at once.
 * A request answered before it reached the barrier fails the barrier and this
 * at once, saying what it answered.
 */
export async function sendEach<T>(gate: Barrier, send: (index: number) => Promise<T>): Promise<T[]> {
	const answers: Promise<T>[] = [];
	for (let index = 0; index < gate.parties; index++) {
		const answer = send(index);
		answer.catch(() => undefined); // a failed request fails the Promise.all below, or the race right here
		answers.push(answer);
		let early: { value: T } | null;
		try {
			early = await Promise.race([gate.reached(index + 1).then(() => null), answer.then(value => ({ value }))]);
		} catch (err) {
			gate.abort(err as Error);
			throw err;
		}
		if (early) {
			const err = new Error(
				`request ${index + 1} of ${gate.parties} was answered before it reached the barrier: ` +
					JSON.stringify(early.value),
			);
			gate.abort(err);
			throw err;
		}
	}
	return Promise.all(answers);
}
