/**
 * `npm run cluster`: a local multi-process moleshop cluster with the topology
 * of docker-compose.yml — a NATS server, one broker process per service and
 * two replicas of the stateless pricing service — with every log line
 * prefixed by its node. Ctrl-C or SIGTERM stops every child, then NATS.
 * Each node answers /health and /ready on a HEALTH_PORT of its own (from HEALTH_PORT, or PORT + 101,
 * upwards, skipping ports in use; the gateway on PORT): the script prints them, and each node's
 * readiness once it answers 200. With METRICS_PORT set, each node serves its Prometheus metrics on a port
 * of its own from there upwards, and the script prints where (metrics stay off otherwise, as on a node).
 *
 * With TRANSPORTER set, the nodes use that NATS and none is started here.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { config } from "../platform/config";
import { nodeArgs } from "../platform/node-process";
import { TOPOLOGY } from "../cluster/topology";

const ROOT = path.resolve(__dirname, "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
const NATS_PORT = 4222;
const STOP_TIMEOUT_MS = 20_000;
const READY_WAIT_MS = 120_000;

const children: Array<{ label: string; child: ChildProcess }> = [];
let stopping = false;

function prefixed(label: string, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) {
	const width = Math.max(...TOPOLOGY.map(t => t.label.length), 4);
	readline.createInterface({ input: stream }).on("line", line => out.write(`${label.padEnd(width)} | ${line}\n`));
}

function start(label: string, command: string, args: string[], env: NodeJS.ProcessEnv) {
	// Own process group: Ctrl-C reaches only this script, which stops the nodes before NATS.
	const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
	prefixed(label, child.stdout!, process.stdout);
	prefixed(label, child.stderr!, process.stderr);
	child.on("exit", (code, signal) => {
		if (!stopping) console.error(`cluster | ${label} exited (${signal ?? `code ${code}`})`);
	});
	children.push({ label, child });
	console.log(`cluster | started ${label} (pid ${child.pid})`);
	return child;
}

function portOpen(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const socket = net.connect(port, "127.0.0.1");
		socket.once("connect", () => socket.end(() => resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

async function startNats(): Promise<string> {
	if (spawnSync("nats-server", ["--version"]).error) {
		console.error(
			"cluster | nats-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install nats-server;",
		);
		console.error(
			"cluster | macOS: brew install nats-server) or point the cluster at a NATS server with TRANSPORTER=nats://host:4222.",
		);
		process.exit(1);
	}
	if (await portOpen(NATS_PORT)) {
		console.error(
			`cluster | Port ${NATS_PORT} is taken. Stop what uses it, or set TRANSPORTER=nats://127.0.0.1:${NATS_PORT} to use that NATS.`,
		);
		process.exit(1);
	}
	fs.mkdirSync(config.dataDir, { recursive: true });
	start(
		"nats",
		"nats-server",
		["-a", "127.0.0.1", "-p", String(NATS_PORT), "-js", "-sd", config.dataDir],
		process.env,
	);
	const deadline = Date.now() + 10_000;
	while (!(await portOpen(NATS_PORT))) {
		if (Date.now() > deadline) throw new Error("nats-server did not open its port within 10 s");
		await new Promise(resolve => setTimeout(resolve, 100));
	}
	return `nats://127.0.0.1:${NATS_PORT}`;
}

/** Stop every node (SIGTERM, so each finishes its requests), then NATS; SIGKILL what hangs. */
async function stopAll(exitCode: number) {
	if (stopping) return;
	stopping = true;
	console.log("cluster | stopping every node…");
	const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
	const exited = (c: ChildProcess) =>
		alive(c) ? new Promise(resolve => c.once("exit", resolve)) : Promise.resolve();
	const stopGroup = async (group: typeof children) => {
		group.forEach(({ child }) => alive(child) && child.kill("SIGTERM"));
		const timer = setTimeout(
			() =>
				group.forEach(({ label, child }) => {
					if (!alive(child)) return;
					console.error(`cluster | ${label} did not stop within ${STOP_TIMEOUT_MS / 1000} s: killed`);
					exitCode = 1;
					child.kill("SIGKILL");
				}),
			STOP_TIMEOUT_MS,
		);
		await Promise.all(group.map(({ child }) => exited(child)));
		clearTimeout(timer);
	};
	await stopGroup(children.filter(c => c.label !== "nats"));
	await stopGroup(children.filter(c => c.label === "nats"));
	console.log("cluster | stopped.");
	process.exit(exitCode);
}

async function main() {
	process.on("SIGINT", () => void stopAll(0));
	process.on("SIGTERM", () => void stopAll(0));
	// Should this script die some other way, take the children with it.
	process.on("exit", () => children.forEach(({ child }) => child.exitCode === null && child.kill("SIGKILL")));
	const transporter = config.transporter?.startsWith("nats://") ? config.transporter : await startNats();
	console.log(`cluster | nodes talk over ${transporter}; the gateway listens on http://localhost:${config.port}`);
	let nextPort = config.healthPort || config.port + 101;
	let nextMetricsPort = config.metricsPort;
	// Ports handed out are not listening yet: a later pick must skip them as well as those in use.
	const taken = new Set<number>([config.port]);
	const freeFrom = async (port: number) => {
		while (taken.has(port) || (await portOpen(port))) port++;
		taken.add(port);
		return port;
	};
	const probes: Array<{ label: string; url: string; metrics?: string }> = [];
	for (const { label, services } of TOPOLOGY) {
		const gateway = services.split(",").includes("api");
		let healthPort = "";
		if (!gateway) {
			nextPort = await freeFrom(nextPort);
			healthPort = String(nextPort++);
		}
		let metricsPort = "";
		if (nextMetricsPort) {
			nextMetricsPort = await freeFrom(nextMetricsPort);
			metricsPort = String(nextMetricsPort++);
		}
		probes.push({
			label,
			url: `http://localhost:${gateway ? config.port : healthPort}/ready`,
			...(metricsPort && { metrics: `http://localhost:${metricsPort}/metrics` }),
		});
		start(label, process.execPath, nodeArgs(RUNNER, path.join(ROOT, "dist/moleculer.config.js")), {
			...process.env,
			SERVICEDIR: path.join(ROOT, "dist/services"),
			SERVICES: services,
			TRANSPORTER: transporter,
			HEALTH_PORT: healthPort,
			METRICS_PORT: metricsPort,
		});
	}
	for (const { label, url, metrics } of probes)
		console.log(
			`cluster | ${label} health: ${url.replace(/ready$/, "health")} · ${url}` +
				(metrics ? ` · metrics: ${metrics}` : ""),
		);
	if (!config.metricsPort)
		console.log("cluster | metrics are off: METRICS_PORT=9100 npm run cluster serves each node's, from 9100 up");
	void Promise.all(probes.map(probe => waitReady(probe.label, probe.url))).then(all => {
		if (all.every(Boolean)) console.log("cluster | every node is ready");
	});
}

/** Poll a node's /ready until it answers 200 (ready or degraded), and say so; false if it never did. */
async function waitReady(label: string, url: string): Promise<boolean> {
	const deadline = Date.now() + READY_WAIT_MS;
	let last = "no answer";
	while (!stopping && Date.now() < deadline) {
		try {
			const res = await fetch(url);
			const body = (await res.json()) as { status?: string };
			last = `${res.status} ${body.status}`;
			if (res.ok) {
				console.log(`cluster | ${label} is ${body.status} (${url})`);
				return true;
			}
		} catch {
			// not listening yet
		}
		await new Promise(resolve => setTimeout(resolve, 500));
	}
	if (!stopping) console.error(`cluster | ${label} was not ready within ${READY_WAIT_MS / 1000} s (${last}): ${url}`);
	return false;
}

main().catch(err => {
	console.error(`cluster | ${err.message}`);
	void stopAll(1);
});
