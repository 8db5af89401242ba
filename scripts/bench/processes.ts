/**
 * The processes the benchmark measures: each started by the bench itself (the node binary on
 * moleculer-runner, or nats-server, never through npm, so that the pid measured and signalled is
 * the process that serves), on free ports, its output in a log file; and what /proc says of them.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { nodeArgs } from "../../platform/node-process";
import { freePort } from "../free-port";

export const ROOT = path.resolve(__dirname, "../../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
const STOP_TIMEOUT_MS = 15_000;

/** A started process and where its output goes. */
export interface Proc {
	label: string;
	child: ChildProcess;
	pid: number;
	logFile: string;
	/** When it was spawned (ms, Date.now()). */
	spawnedAt: number;
}

/** CPU seconds (user + system) and RSS of a process. */
export interface Usage {
	cpuSeconds: number;
	rssMb: number;
}

export { freePort };

/** A fresh folder under the system's temp folder. */
export const tempDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `moleshop-bench-${name}-`));

/** Start a process with its output in `<logDir>/<label>.log`. */
export function startProcess(
	label: string,
	command: string,
	args: string[],
	env: NodeJS.ProcessEnv,
	logDir: string,
): Proc {
	const logFile = path.join(logDir, `${label}.log`);
	const out = fs.openSync(logFile, "w");
	const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", out, out] });
	fs.closeSync(out);
	if (child.pid === undefined) throw new Error(`${label}: ${command} did not start`);
	return { label, child, pid: child.pid, logFile, spawnedAt: Date.now() };
}

/**
 * One moleshop node as `npm start` runs it (moleculer-runner on dist/, platform/node-process.ts), with
 * `env` on top of the bench's. With BENCH_CPU_PROF=<folder>, each node writes a V8 CPU profile of its
 * whole life there (`<label>.cpuprofile`, when it stops), to open in Chrome's DevTools.
 */
export function startNode(label: string, env: NodeJS.ProcessEnv, logDir: string): Proc {
	const base = { ...process.env };
	delete base.MONGO_URI; // the embedded store, in the target's own DATA_DIR
	const profileDir = process.env.BENCH_CPU_PROF;
	const profile = profileDir
		? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${label}.cpuprofile`]
		: [];
	return startProcess(
		label,
		process.execPath,
		[...profile, ...nodeArgs(RUNNER, "dist/moleculer.config.js")],
		{
			...base,
			NODE_ENV: "production",
			SERVICEDIR: "dist/services",
			LOG_LEVEL: "warn",
			HEALTH_PORT: "",
			...env,
		},
		logDir,
	);
}

function accepting(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect(port, "127.0.0.1");
		socket.once("connect", () => socket.end(() => resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

/** Wait until `check` answers true; throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check().catch(() => false))) {
		if (Date.now() > deadline) throw new Error(`${what} was not ready within ${timeoutMs / 1000} s`);
		await new Promise(resolve => setTimeout(resolve, 50));
	}
}

/** Wait for a 200 from `url`. */
export const waitReady = (url: string, timeoutMs = 120_000) =>
	waitFor(async () => (await fetch(url)).ok, timeoutMs, url);

/** nats-server with JetStream, its store in `storeDir`, on a free port. */
export async function startNats(storeDir: string, logDir: string): Promise<{ proc: Proc; url: string }> {
	if (spawnSync("nats-server", ["--version"]).error) {
		throw new Error(
			"nats-server is not on PATH (Debian/Ubuntu: apt-get install nats-server); leave out the cluster",
		);
	}
	const port = await freePort();
	const proc = startProcess(
		"nats",
		"nats-server",
		["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
		process.env,
		logDir,
	);
	await waitFor(() => accepting(port), 15_000, `nats-server on port ${port}`);
	return { proc, url: `nats://127.0.0.1:${port}` };
}

/** CPU time and RSS of a process, from /proc (Linux); null elsewhere or once it is gone. */
export function usage(pid: number): Usage | null {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
		const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
		return { cpuSeconds, rssMb: rss ? Number(rss[1]) / 1024 : 0 };
	} catch {
		return null;
	}
}

const alive = (proc: Proc) => proc.child.exitCode === null && proc.child.signalCode === null;

/** SIGTERM `procs` (each finishes its requests), SIGKILL what is still there after STOP_TIMEOUT_MS. */
export async function stopProcesses(procs: Proc[]): Promise<void> {
	const running = procs.filter(alive);
	const exited = running.map(proc => new Promise(resolve => proc.child.once("exit", resolve)));
	running.forEach(proc => proc.child.kill("SIGTERM"));
	const timer = setTimeout(() => running.filter(alive).forEach(proc => proc.child.kill("SIGKILL")), STOP_TIMEOUT_MS);
	await Promise.all(exited);
	clearTimeout(timer);
}

/** Lines a node logged at ERROR and at WARN (Moleculer's short format: `[time] LEVEL node/module: …`). */
export function loggedProblems(proc: Proc): { errors: number; warnings: number } {
	const text = fs.existsSync(proc.logFile) ? fs.readFileSync(proc.logFile, "utf8") : "";
	return {
		errors: text.match(/^\S+ ERROR /gm)?.length ?? 0,
		warnings: text.match(/^\S+ WARN /gm)?.length ?? 0,
	};
}
