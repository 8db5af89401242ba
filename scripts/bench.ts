/**
 * `npm run bench`: how fast moleshop answers, next to the limit of this machine.
 *
 * It starts, each on a free port and as its own process: a raw node http server
 * answering a constant product (the limit: no framework, no store), and one
 * moleshop node as `npm start` runs it (every service, the embedded store in a
 * fresh data folder). It drives each workload with autocannon at a fixed
 * concurrency, after a warm-up, and reports requests per second, p50 and p99
 * latency, failed requests, the ratio to the raw server of the same run (figures
 * move between machines; ratios much less), the CPU time the node spent per
 * request and its RSS. Results go to bench/results/latest.{md,json}.
 *
 * Settings (environment): BENCH_SECONDS (per workload, default 8),
 * BENCH_CONNECTIONS (default 32). A script, never a test: figures depend on the
 * machine and on what else runs on it, so compare them only within one run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";

const ROOT = path.resolve(__dirname, "../..");
const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
const RESULTS = path.join(ROOT, "bench/results");
const SECONDS = Number(process.env.BENCH_SECONDS || 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 32);
const WARMUP_SECONDS = 2;
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

interface Workload {
	name: string;
	/** The path on moleshop, and what the raw server answers in its place. */
	path: (productId: string) => string;
}

interface Measure {
	rps: number;
	p50: number;
	p99: number;
	failed: number;
	/** CPU time of the measured process per request, in ms (null where /proc is not there). */
	cpuMsPerRequest: number | null;
	rssMb: number | null;
}

const WORKLOADS: Workload[] = [
	{ name: "GET product by id", path: id => `/api/v1/products/${id}` },
	{ name: "GET products page (20 rows)", path: () => "/api/v1/products?pageSize=20" },
];

const children: ChildProcess[] = [];

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
	});
}

/** Start a process; its output goes to `logFile` (the node logs what went wrong under load there). */
function start(command: string, args: string[], env: NodeJS.ProcessEnv, logFile?: string): ChildProcess {
	const out = logFile ? fs.openSync(logFile, "w") : "ignore";
	const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", out, out] });
	children.push(child);
	return child;
}

async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		try {
			if ((await fetch(url)).ok) return;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) throw new Error(`${url} was not ready within ${timeoutMs / 1000} s`);
		await new Promise(resolve => setTimeout(resolve, 200));
	}
}

/** CPU seconds (user + system) and RSS of a process, from /proc (Linux); null elsewhere. */
function usage(pid: number): { cpuSeconds: number; rssMb: number } | null {
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

async function load(url: string, seconds: number): Promise<autocannon.Result> {
	return autocannon({ url, connections: CONNECTIONS, duration: seconds, pipelining: 1 });
}

async function measure(url: string, pid: number): Promise<Measure> {
	await load(url, WARMUP_SECONDS);
	const before = usage(pid);
	const result = await load(url, SECONDS);
	const after = usage(pid);
	const requests = result.requests.total;
	return {
		rps: Math.round(result.requests.average),
		p50: result.latency.p50,
		p99: result.latency.p99,
		failed: result.errors + result.timeouts + result.non2xx,
		cpuMsPerRequest:
			before && after && requests ? ((after.cpuSeconds - before.cpuSeconds) * 1000) / requests : null,
		rssMb: after?.rssMb ?? null,
	};
}

/** A raw node http server answering every request with one constant product: the limit of the machine. */
const RAW_SERVER = `
const body = JSON.stringify({ id: "p1", sku: "MUG-001", name: "Moleculer Mug", price: 1499, currency: "USD", stock: 100 });
require("node:http").createServer((req, res) => {
	res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
	res.end(body);
}).listen(Number(process.env.PORT), "127.0.0.1");
`;

async function main() {
	const rawPort = await freePort();
	const raw = start(process.execPath, ["-e", RAW_SERVER], { ...process.env, PORT: String(rawPort) });
	await waitReady(`http://127.0.0.1:${rawPort}/`);

	const nodePort = await freePort();
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-bench-"));
	const nodeLog = path.join(os.tmpdir(), `moleshop-bench-node-${process.pid}.log`);
	const node = start(
		process.execPath,
		["--disable-warning=DEP0174", RUNNER, "--config", "dist/moleculer.config.js"],
		{
			...process.env,
			NODE_ENV: "production",
			JWT_SECRET: "bench-only-secret",
			SERVICEDIR: "dist/services",
			PORT: String(nodePort),
			DATA_DIR: dataDir,
			NAMESPACE: `bench-${process.pid}`,
			LOG_LEVEL: "warn",
		},
		nodeLog,
	);
	const api = `http://127.0.0.1:${nodePort}`;
	await waitReady(`${api}/ready`);
	const { rows } = (await (await fetch(`${api}/api/v1/products?pageSize=1`)).json()) as {
		rows: Array<{ id: string }>;
	};
	const productId = rows[0].id;

	const results: Array<{ workload: string; raw: Measure; node: Measure }> = [];
	for (const workload of WORKLOADS) {
		console.log(`bench | ${workload.name}: raw node http, then one moleshop node (${SECONDS} s each)`);
		const rawMeasure = await measure(`http://127.0.0.1:${rawPort}${workload.path(productId)}`, raw.pid!);
		const nodeMeasure = await measure(`${api}${workload.path(productId)}`, node.pid!);
		results.push({ workload: workload.name, raw: rawMeasure, node: nodeMeasure });
	}
	fs.rmSync(dataDir, { recursive: true, force: true });
	const logged = fs.readFileSync(nodeLog, "utf8");
	const errorLines = logged.match(/^\S+ ERROR /gm)?.length ?? 0;
	const warnLines = logged.match(/^\S+ WARN /gm)?.length ?? 0;

	const ms = (n: number | null) => (n == null ? "–" : n.toFixed(n < 10 ? 2 : 0));
	const table = [
		`| workload | raw rps | one node rps | ratio | p50 / p99 ms | failed | CPU ms/req | node RSS MB |`,
		`|---|---|---|---|---|---|---|---|`,
		...results.map(
			({ workload, raw: r, node: n }) =>
				`| ${workload} | ${r.rps} | ${n.rps} | ${(n.rps / r.rps).toFixed(2)}× | ${n.p50} / ${n.p99} | ${n.failed} | ${ms(n.cpuMsPerRequest)} | ${ms(n.rssMb)} |`,
		),
	].join("\n");
	const header =
		`moleshop bench, ${new Date().toISOString()}: ${os.cpus().length} cores, node ${process.version}, ` +
		`${CONNECTIONS} connections, ${SECONDS} s per workload after ${WARMUP_SECONDS} s of warm-up. ` +
		`The node logged ${errorLines} errors and ${warnLines} warnings meanwhile (${nodeLog}).`;
	fs.mkdirSync(RESULTS, { recursive: true });
	fs.writeFileSync(path.join(RESULTS, "latest.md"), `${header}\n\n${table}\n`);
	fs.writeFileSync(
		path.join(RESULTS, "latest.json"),
		JSON.stringify(
			{
				at: new Date().toISOString(),
				connections: CONNECTIONS,
				seconds: SECONDS,
				errorLines,
				warnLines,
				results,
			},
			null,
			2,
		),
	);
	console.log(`\n${header}\n\n${table}\n\nWritten to bench/results/latest.md and latest.json.`);
}

function stopAll() {
	for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
}

main()
	.catch(err => {
		console.error(`bench | ${err instanceof Error ? err.message : err}`);
		process.exitCode = 1;
	})
	.finally(stopAll);
process.on("SIGINT", () => {
	stopAll();
	process.exit(130);
});
