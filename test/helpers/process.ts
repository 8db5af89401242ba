/**
 * Real moleshop nodes as separate OS processes, started the way `npm start`
 * starts them (moleculer-runner on the build in dist/), for tests that need processes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { nodeArgs } from "../../platform/node-process";

export { freePort } from "../../scripts/free-port";

const ROOT = path.resolve(__dirname, "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js"); // the package exports do not list it

/** Poll `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
	check: () => Promise<T | undefined | false>,
	timeoutMs: number,
	what: string,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	let lastError: unknown;
	while (Date.now() < deadline) {
		try {
			const value = await check();
			if (value) return value;
		} catch (err) {
			lastError = err;
		}
		await new Promise(resolve => setTimeout(resolve, 200));
	}
	throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}

export interface NodeProcess {
	child: ChildProcess;
	/** Everything the node printed so far. */
	output(): string;
	/** SIGTERM, then wait for the exit; resolves with the exit code. */
	stop(): Promise<number | null>;
}

/**
 * Start a node from the build (`npm test` builds first) the way `npm run broker` does:
 * all services, or those in `SERVICES`; development mode and its own namespace unless `env` says otherwise.
 * On the MongoDB path the node uses the test file's database (MONGO_URI), like the test's own brokers.
 */
export function startNode(env: Record<string, string>, args: string[] = []): NodeProcess {
	const child = spawn(process.execPath, [...nodeArgs(RUNNER, path.join(ROOT, "dist/moleculer.config.js")), ...args], {
		cwd: ROOT,
		stdio: ["pipe", "pipe", "pipe"],
		env: {
			PATH: process.env.PATH ?? "",
			HOME: process.env.HOME ?? "",
			NODE_ENV: "development",
			LOG_LEVEL: "warn",
			NAMESPACE: `test-${process.pid}`,
			SERVICEDIR: path.join(ROOT, "dist/services"),
			...(process.env.MONGO_URI && { MONGO_URI: process.env.MONGO_URI }),
			...env,
		},
	});
	let output = "";
	child.stdout!.on("data", chunk => (output += chunk));
	child.stderr!.on("data", chunk => (output += chunk));
	const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)));
	return {
		child,
		output: () => output,
		async stop() {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			return exited;
		},
	};
}

/** One JSON request to the gateway on `port` (`url` under /api/v1). */
export async function json(port: number, method: string, url: string, body?: unknown, token?: string) {
	const res = await fetch(`http://127.0.0.1:${port}/api/v1${url}`, {
		method,
		headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

/**
 * Wait until `broker` can call every one of `actions`. A node learns another's
 * services from its INFO packets, which can come a moment after that node is
 * ready itself: tests wait for the view of the cluster they need.
 */
export function waitForActions(broker: { registry: any }, actions: string[], timeoutMs = 30_000) {
	return waitFor(
		async () => {
			const known = new Set(
				(broker.registry.getActionList({ onlyAvailable: true }) as Array<{ name: string }>).map(a => a.name),
			);
			return actions.every(action => known.has(action));
		},
		timeoutMs,
		`actions ${actions.join(", ")}`,
	);
}

/** Wait until the gateway on `port` answers /ready with 200. */
export function waitUntilReady(port: number, timeoutMs = 60_000) {
	return waitFor(
		async () => {
			const res = await fetch(`http://127.0.0.1:${port}/ready`);
			if (res.status === 200) return true;
			// Kept as the last error: a timeout then says which check of /ready failed, not only that one did.
			throw new Error(`/ready answered ${res.status} ${(await res.text()).slice(0, 1000)}`);
		},
		timeoutMs,
		`the gateway on port ${port} to be ready`,
	);
}

export interface ReplProcess {
	/** Type a command and resolve with what it printed, once the prompt is back. */
	command(line: string, timeoutMs?: number): Promise<string>;
	quit(): Promise<number | null>;
}

const PROMPT = "mol $ ";
// The REPL colours its output: the escape sequences start with the ESC control character.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/**
 * Start a REPL node the way `npm run repl` does (no services of its own), driven through
 * pipes: one command at a time, each finished when the prompt is printed again.
 */
export async function startRepl(env: Record<string, string>, home: string): Promise<ReplProcess> {
	const node = startNode({ LOG_LEVEL: "error", NO_COLOR: "1", HOME: home, SERVICEDIR: "", ...env }, ["--repl"]);
	node.child.stdin?.setDefaultEncoding("utf8");
	let seen = 0;
	const untilPrompt = (timeoutMs: number) =>
		waitFor(
			async () => {
				const out = node.output().replace(ANSI, "");
				return out.length > seen && out.endsWith(PROMPT) ? out : undefined;
			},
			timeoutMs,
			"the REPL prompt",
		);
	seen = (await untilPrompt(60_000)).length;
	return {
		async command(line, timeoutMs = 30_000) {
			const before = seen;
			node.child.stdin!.write(`${line}\n`);
			const out = await untilPrompt(timeoutMs);
			seen = out.length;
			return out.slice(before, out.length - PROMPT.length);
		},
		async quit() {
			node.child.stdin!.write("quit\n");
			return node.stop();
		},
	};
}
