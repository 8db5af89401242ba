/**
 * `npm run bench`: how fast moleshop answers, next to the limit of this machine (issue 10).
 *
 * It starts what it measures, each process on free ports and with a fresh data folder, and stops
 * it at the end (SIGTERM to the node processes themselves):
 * - `raw`: a node http server answering a constant product — the limit (no framework, no store);
 * - `node`: one moleshop node as `npm start` runs it (every service, the embedded store);
 * - `cluster`: nats-server with JetStream and the nodes of issue 10 — a gateway (api, events), a
 *   products node, one node with every other stateful service, two pricing nodes (BENCH_CLUSTER=full:
 *   the topology of `npm run cluster`, cluster/topology.ts).
 * Each workload (scripts/bench/shop.ts) runs with autocannon at a fixed concurrency after a warm-up,
 * then at constant arrival rates to find the knee: the highest rate whose p99 stays under 50 ms
 * (scripts/bench/load.ts). Reported: requests/s and the ratio to raw, p50/p99, failed requests, CPU
 * time per request of each process (from /proc) and their RSS, ready times, the lines each node
 * logged at ERROR/WARN; for the cluster also the scaling by brokers (POST /quote with two pricing
 * replicas, then one) and for the node its RSS after 10,000 orders and 100,000 product views.
 * Results: bench/results/latest.md and latest.json, with every target of issue 10 met or not.
 *
 * A script, never a test: figures depend on the machine and on what else runs on it, so compare them
 * within one run (as ratios to raw). Settings: the environment, read in `settings()` below.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { TOPOLOGY } from "../cluster/topology";
import { seedStore } from "./seed";
import type autocannon from "autocannon";
import { findKnee, runLoad, type Knee, type Measure } from "./bench/load";
import {
	freePort,
	loggedProblems,
	ROOT,
	startNats,
	startNode,
	startProcess,
	stopProcesses,
	tempDir,
	waitReady,
	type Proc,
} from "./bench/processes";
import { ADMIN, prepareShop, QUOTE_WORKLOAD, WORKLOADS, type Fixture, type Workload } from "./bench/shop";
import { measureMetricsFloor } from "./bench/metrics-floor";
import { renderReport, type BenchResults, type TargetResult, type WorkloadResult } from "./bench/report";

const TARGETS = ["raw", "node", "cluster", "seeded", "metered", "observed"] as const;
type TargetName = (typeof TARGETS)[number];
/**
 * What runs by default: `seeded` (issue 10, item 4), `metered` (one node with metrics on and scraped) and
 * `observed` (metrics and tracing on; issue 11, item 8) are asked for by name.
 */
const DEFAULT_TARGETS: TargetName[] = ["raw", "node", "cluster"];
/** Extra phases, selected like workloads: the node's memory after many orders and views, the cluster's scaling. */
const PHASES = ["memory", "scaling"];

/** The bench's settings. Its own environment variables (the services' are read by platform/config.ts). */
function settings(env: NodeJS.ProcessEnv = process.env) {
	const number = (name: string, fallback: number) => {
		const value = Number(env[name] || fallback);
		if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
		return value;
	};
	const list = (name: string, all: readonly string[], defaults = all) => {
		const chosen = (env[name] || defaults.join(",")).split(",").map(s => s.trim());
		const unknown = chosen.filter(s => !all.includes(s));
		if (unknown.length) throw new Error(`${name}: unknown ${unknown.join(", ")} (one of ${all.join(", ")})`);
		return chosen;
	};
	return {
		targets: list("BENCH_TARGETS", TARGETS, DEFAULT_TARGETS) as TargetName[],
		workloads: list("BENCH_WORKLOADS", [...WORKLOADS.map(w => w.key), ...PHASES]),
		seconds: number("BENCH_SECONDS", 8),
		warmupSeconds: number("BENCH_WARMUP_SECONDS", 2),
		connections: number("BENCH_CONNECTIONS", 32),
		kneeSteps: number("BENCH_KNEE_STEPS", 4),
		kneeSeconds: number("BENCH_KNEE_SECONDS", 5),
		p99BoundMs: number("BENCH_P99_MS", 50),
		customers: number("BENCH_CUSTOMERS", 64),
		/** The store of `node` and `cluster` (0 and 0: an empty shop with the demo catalog). */
		store: { products: number("BENCH_PRODUCTS", 0), orders: number("BENCH_ORDERS", 0) },
		/** The store of `seeded`: one node next to `node` of the same run, for issue 10's item 4. */
		seededStore: {
			products: number("BENCH_SEEDED_PRODUCTS", 20_000),
			orders: number("BENCH_SEEDED_ORDERS", 100_000),
		},
		cluster: (env.BENCH_CLUSTER || "bench") as "bench" | "full",
		/** `observed`: the share of requests traced; `metered` and `observed`: how often metrics are scraped (as Prometheus would). */
		traceRate: number("BENCH_TRACE_RATE", 1),
		scrapeSeconds: number("BENCH_SCRAPE_SECONDS", 5),
		memoryOrders: number("BENCH_MEMORY_ORDERS", 10_000),
		memoryViews: number("BENCH_MEMORY_VIEWS", 100_000),
	};
}

export type Settings = ReturnType<typeof settings>;
type Store = Settings["store"];

/** The cluster of issue 10: label and SERVICES of each node. */
const BENCH_CLUSTER = [
	{ label: "gateway", services: "api,events" },
	{ label: "products", services: "products" },
	{
		label: "stateful",
		services: "users,carts,orders,payment-provider,payments,invoices,notifications,analytics",
	},
	{ label: "pricing-1", services: "pricing" },
	{ label: "pricing-2", services: "pricing" },
];

/** A raw node http server answering every request with one constant product: the limit of the machine. */
const RAW_SERVER = `
const body = JSON.stringify({ id: "p1", sku: "MUG-001", name: "Moleculer Mug", price: 1499, currency: "USD", stock: 100 });
require("node:http").createServer((req, res) => {
	res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
	res.end(body);
}).listen(Number(process.env.PORT), "127.0.0.1");
`;

const running: Proc[] = [];
const log = (line: string) => console.log(`bench | ${line}`);

/** A running target: its processes, where its gateway listens, and when it was ready. */
interface Target {
	name: TargetName;
	api: string;
	procs: Proc[];
	readySeconds: number;
	dirs: string[];
}

async function startRaw(logDir: string): Promise<Target> {
	const port = await freePort();
	const proc = startProcess(
		"raw",
		process.execPath,
		["-e", RAW_SERVER],
		{ ...process.env, PORT: String(port) },
		logDir,
	);
	running.push(proc);
	const api = `http://127.0.0.1:${port}`;
	await waitReady(`${api}/`);
	return { name: "raw", api, procs: [proc], readySeconds: (Date.now() - proc.spawnedAt) / 1000, dirs: [] };
}

const shopEnv = (dataDir: string, namespace: string) => ({
	DATA_DIR: dataDir,
	NAMESPACE: namespace,
	JWT_SECRET: "bench-only-secret",
	ADMIN_EMAIL: ADMIN.email,
	ADMIN_PASSWORD: ADMIN.password,
});

/** A fresh data folder, with a shop of `store` written into it unless it is empty (scripts/seed.ts). */
async function seeded(store: Store, name: string): Promise<string> {
	const dataDir = tempDir(`${name}-data`);
	if (store.products || store.orders) {
		const started = Date.now();
		await seedStore(dataDir, store);
		log(
			`${name}: seeded ${store.products} products and ${store.orders} orders in ${(Date.now() - started) / 1000} s`,
		);
	}
	return dataDir;
}

async function startOneNode(
	name: "node" | "seeded" | "metered" | "observed",
	store: Store,
	logDir: string,
	extraEnv: NodeJS.ProcessEnv = {},
): Promise<Target> {
	const dataDir = await seeded(store, name);
	const port = await freePort();
	const env = { ...shopEnv(dataDir, `bench-${name}-${process.pid}`), PORT: String(port), ...extraEnv };
	const proc = startNode(name, env, logDir);
	running.push(proc);
	const api = `http://127.0.0.1:${port}`;
	await waitReady(`${api}/ready`);
	return { name, api, procs: [proc], readySeconds: (Date.now() - proc.spawnedAt) / 1000, dirs: [dataDir] };
}

/** What a metered or observed node sent while it was measured: spans to the Zipkin stand-in, metrics to the scraper. */
const exported = { spans: 0, scrapes: 0, scrapeBytes: 0 };

/** Scrape a node's Prometheus endpoint every BENCH_SCRAPE_SECONDS, as Prometheus would, counting what it answers. */
function scrapeEvery(s: Settings, metricsPort: number) {
	const scraper = setInterval(async () => {
		try {
			const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
			exported.scrapes += 1;
			exported.scrapeBytes = text.length;
		} catch {
			// the node is stopping
		}
	}, s.scrapeSeconds * 1000);
	scraper.unref();
}

/** One node with metrics on and scraped, tracing off: what metrics alone cost (issue 11, item 8). */
async function startMeteredNode(s: Settings, logDir: string): Promise<Target> {
	const metricsPort = await freePort();
	const target = await startOneNode("metered", s.store, logDir, { METRICS_PORT: String(metricsPort) });
	scrapeEvery(s, metricsPort);
	return target;
}

/**
 * One node as an operator runs it with metrics and tracing on: the Prometheus reporter scraped every
 * BENCH_SCRAPE_SECONDS, and spans exported in Zipkin's format to a collector of the bench's own that
 * only counts them (the cost of a real Zipkin is its own process's, not the node's).
 */
async function startObservedNode(s: Settings, logDir: string): Promise<Target> {
	const collector = http.createServer((req, res) => {
		let body = "";
		req.setEncoding("utf8");
		req.on("data", chunk => (body += chunk));
		req.on("end", () => {
			try {
				exported.spans += (JSON.parse(body) as unknown[]).length;
			} catch {
				// not a span list: counted as nothing
			}
			res.writeHead(202).end();
		});
	});
	const zipkinPort = await freePort();
	await new Promise<void>(resolve => collector.listen(zipkinPort, "127.0.0.1", resolve));
	collector.unref();
	const metricsPort = await freePort();
	const target = await startOneNode("observed", s.store, logDir, {
		METRICS_PORT: String(metricsPort),
		TRACE_EXPORTER: "zipkin",
		ZIPKIN_URL: `http://127.0.0.1:${zipkinPort}`,
		TRACE_SAMPLE_RATE: String(s.traceRate),
	});
	scrapeEvery(s, metricsPort);
	return target;
}

async function startCluster(s: Settings, logDir: string): Promise<Target> {
	const dataDir = await seeded(s.store, "cluster");
	const natsDir = tempDir("nats");
	const spawnedAt = Date.now();
	const nats = await startNats(natsDir, logDir);
	running.push(nats.proc);
	const port = await freePort();
	const nodes = s.cluster === "full" ? TOPOLOGY : BENCH_CLUSTER;
	const env = { ...shopEnv(dataDir, `bench-cluster-${process.pid}`), TRANSPORTER: nats.url };
	const procs = nodes.map(({ label, services }) =>
		startNode(
			label,
			{ ...env, SERVICES: services, ...(services.includes("api") && { PORT: String(port) }) },
			logDir,
		),
	);
	running.push(...procs);
	const api = `http://127.0.0.1:${port}`;
	await waitReady(`${api}/ready`);
	return {
		name: "cluster",
		api,
		procs: [nats.proc, ...procs],
		readySeconds: (Date.now() - spawnedAt) / 1000,
		dirs: [dataDir, natsDir],
	};
}

/** Warm up, then measure at the fixed concurrency; `seen` is told of every run (the warm-up's too). */
async function fixed(
	s: Settings,
	target: Target,
	requests: autocannon.Request[],
	procs = target.procs,
	seen: (m: Measure) => void = () => undefined,
): Promise<Measure> {
	const load = { url: target.api, requests, connections: s.connections, procs };
	if (s.warmupSeconds) seen(await runLoad({ ...load, seconds: s.warmupSeconds }));
	const measure = await runLoad({ ...load, seconds: s.seconds });
	seen(measure);
	return measure;
}

async function runWorkload(s: Settings, target: Target, workload: Workload, fixture: Fixture): Promise<WorkloadResult> {
	const list = workload.requests(fixture);
	const seen = (m: Measure) => {
		fixture.sent.views += Math.round(m.requests * list.views);
		fixture.sent.orders += Math.round(m.requests * list.orders);
	};
	const measure = await fixed(s, target, list.requests, target.procs, seen);
	log(`${target.name} | ${workload.name}: ${measure.rps} rps, p99 ${measure.p99} ms, ${measure.errors} failed`);
	let knee: Knee | null = null;
	if (s.kneeSteps > 0) {
		knee = await findKnee(
			{ url: target.api, requests: list.requests, seconds: s.kneeSeconds, procs: target.procs },
			measure.rps,
			s.kneeSteps,
			s.p99BoundMs,
			s.connections,
		);
		knee.steps.forEach(step => seen(step.measure));
		log(
			`${target.name} | ${workload.name}: knee ${knee.rps} rps ` +
				`(${knee.steps.map(st => `${st.rate}/s: ${st.achieved}/s p99 ${st.measure.p99} ${st.ok ? "ok" : "no"}`).join(", ")})`,
		);
	}
	return { key: workload.key, name: workload.name, measure, knee };
}

/** Top the node up to BENCH_MEMORY_ORDERS orders and BENCH_MEMORY_VIEWS views, then read its RSS. */
async function memoryPhase(s: Settings, target: Target, fixture: Fixture) {
	const byKey = (key: string) => WORKLOADS.find(w => w.key === key)!.requests(fixture).requests;
	const load = { url: target.api, connections: s.connections, procs: target.procs, seconds: 0 };
	const views = s.memoryViews - fixture.sent.views;
	const orders = s.memoryOrders - fixture.sent.orders;
	if (views >= s.connections)
		fixture.sent.views += (await runLoad({ ...load, requests: byKey("product"), amount: views })).requests;
	if (orders >= s.connections)
		fixture.sent.orders += (await runLoad({ ...load, requests: byKey("checkout"), amount: orders })).requests;
	await new Promise(resolve => setTimeout(resolve, 2_000)); // the events of the last orders are handled
	const rssMb = (await runLoad({ ...load, requests: byKey("page"), amount: s.connections })).rssMb;
	log(`node: ${rssMb?.toFixed(0)} MB RSS after ${fixture.sent.orders} orders and ${fixture.sent.views} views`);
	return { orders: fixture.sent.orders, views: fixture.sent.views, rssMb };
}

/** POST /quote with both pricing replicas, then with one (the other stopped by SIGTERM). */
async function scalingPhase(s: Settings, target: Target, fixture: Fixture) {
	const { requests } = QUOTE_WORKLOAD.requests(fixture);
	const two = await fixed(s, target, requests);
	const second = target.procs.find(p => p.label === "pricing-2")!;
	await stopProcesses([second]);
	await new Promise(resolve => setTimeout(resolve, 1_000));
	const live = target.procs.filter(p => p !== second);
	const one = await fixed(s, target, requests, live);
	log(`cluster | quote: ${one.rps} rps with one pricing replica, ${two.rps} with two`);
	return { workload: QUOTE_WORKLOAD.name, one, two, ratio: one.rps ? two.rps / one.rps : null };
}

async function startTarget(s: Settings, name: Exclude<TargetName, "raw">, logDir: string) {
	if (name === "cluster") return startCluster(s, logDir);
	if (name === "metered") return startMeteredNode(s, logDir);
	if (name === "observed") return startObservedNode(s, logDir);
	return startOneNode(name, name === "seeded" ? s.seededStore : s.store, logDir);
}

async function benchTarget(s: Settings, name: Exclude<TargetName, "raw">, logDir: string): Promise<TargetResult> {
	log(`${name}: starting`);
	const store = name === "seeded" ? s.seededStore : s.store;
	const target = await startTarget(s, name, logDir);
	log(`${name}: ready in ${target.readySeconds.toFixed(1)} s; signing up ${s.customers} customers`);
	const result: TargetResult = { name, store, readySeconds: target.readySeconds, workloads: [], processes: [] };
	try {
		const fixture = await prepareShop(target.api, s.customers);
		for (const workload of WORKLOADS.filter(w => s.workloads.includes(w.key))) {
			result.workloads.push(await runWorkload(s, target, workload, fixture));
			if (workload.key === "mix") result.rssAfterMixMb = result.workloads.at(-1)!.measure.rssMb;
		}
		if (name === "node" && s.workloads.includes("memory")) result.memory = await memoryPhase(s, target, fixture);
		if (name === "cluster" && s.workloads.includes("scaling"))
			result.scaling = await scalingPhase(s, target, fixture);
	} finally {
		const last = result.workloads.at(-1)?.measure.processes ?? [];
		// The gateway first (no request is left to fail), then the other nodes, then NATS (no node logs a lost connection).
		const gateway = target.procs.filter(proc => proc.label === "gateway" || proc.label === "api");
		await stopProcesses(gateway);
		await stopProcesses(target.procs.filter(proc => proc.label !== "nats"));
		await stopProcesses(target.procs);
		result.processes = target.procs.map(proc => ({
			label: proc.label,
			rssMb: last.find(p => p.label === proc.label)?.rssMb ?? null,
			...loggedProblems(proc),
			logFile: proc.logFile,
		}));
		for (const dir of target.dirs) fs.rmSync(dir, { recursive: true, force: true });
	}
	if (name === "metered" || name === "observed") {
		const traceRate = name === "observed" ? s.traceRate : 0;
		result.observed = { ...exported, traceRate, scrapeSeconds: s.scrapeSeconds };
		log(`${name}: ${exported.spans} spans exported, ${exported.scrapes} scrapes of ${exported.scrapeBytes} bytes`);
		Object.assign(exported, { spans: 0, scrapes: 0, scrapeBytes: 0 });
	}
	return result;
}

async function main() {
	const s = settings();
	const startedAt = Date.now();
	const logDir = tempDir("logs");
	log(`targets ${s.targets.join(", ")}; workloads ${s.workloads.join(", ")}; logs in ${logDir}`);
	const results: BenchResults = {
		at: new Date().toISOString(),
		machine: { cores: os.cpus().length, node: process.version },
		settings: s,
		raw: null,
		targets: [],
		totalSeconds: 0,
	};
	if (s.targets.includes("raw")) {
		const raw = await startRaw(logDir);
		results.raw = await fixed(s, raw, [{ method: "GET", path: "/api/v1/products/p1" }]);
		log(`raw: ${results.raw.rps} rps, p99 ${results.raw.p99} ms`);
		await stopProcesses(raw.procs);
	}
	for (const name of ["node", "metered", "observed", "seeded", "cluster"] as const) {
		if (s.targets.includes(name)) results.targets.push(await benchTarget(s, name, logDir));
	}
	if (s.targets.includes("metered")) {
		results.metricsFloor = await measureMetricsFloor();
		const f = results.metricsFloor;
		log(`metrics floor: ${f.offMicros.toFixed(1)} µs per two-call request off, ${f.onMicros.toFixed(1)} on`);
	}
	results.totalSeconds = Math.round((Date.now() - startedAt) / 1000);
	const markdown = renderReport(results);
	const dir = path.join(ROOT, "bench/results");
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, "latest.md"), markdown);
	fs.writeFileSync(path.join(dir, "latest.json"), JSON.stringify(results, null, 2) + "\n");
	console.log(`\n${markdown}\nWritten to bench/results/latest.md and latest.json.`);
}

main()
	.catch(err => {
		console.error(`bench | ${err instanceof Error ? err.stack : err}`);
		process.exitCode = 1;
	})
	.finally(() => stopProcesses(running));
process.on("SIGINT", () => {
	void stopProcesses(running).then(() => process.exit(130));
});
