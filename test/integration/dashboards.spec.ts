/**
 * The observability files of docker-compose.yml (ops/), checked as far as this machine allows: no
 * container runs here, but Prometheus does (Debian's package, installed by .ci/run). Its own
 * `promtool` checks the compose configuration; a live moleshop node (every service, metrics on)
 * sells one order, a Prometheus of the test's own scrapes it, and every query of the provisioned
 * Grafana dashboard is asked of that Prometheus: each must be valid PromQL over metrics the node
 * exports, and the panels a checkout feeds must show it; its traces reach a Zipkin stand-in. Moleculer's reporter leaves out a metric with
 * no series yet (a circuit that never opened, a refund never made): such a metric must at least be
 * registered by a node of the same configuration with metrics on (every service, in this process).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { ALL_SERVICES, startBroker } from "../helpers/shop";
import { freePort, json, startNode, waitFor, waitUntilReady, type NodeProcess } from "../helpers/process";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const dashboard = JSON.parse(read("ops/grafana/dashboards/moleshop.json"));
const prometheusConfig = parse(read("ops/prometheus/prometheus.yml"));
const compose = parse(read("docker-compose.yml"), { merge: true });

/** Every query of the dashboard, with the panel it belongs to. */
const queries: Array<{ panel: string; expr: string }> = dashboard.panels.flatMap((panel: any) =>
	(panel.targets ?? []).map((target: any) => ({ panel: panel.title, expr: target.expr })),
);
/** The metric names a query reads (Moleculer's and the shop's own; a histogram's series by its base name). */
const metricsOf = (expr: string) =>
	[...expr.matchAll(/\b((?:moleculer|moleshop)_[a-z_]+)/g)].map(m => m[1].replace(/_(bucket|sum|count)$/, ""));

const prometheusInstalled = !spawnSync("prometheus", ["--version"]).error;
if (!prometheusInstalled && process.env.REQUIRE_PROMETHEUS)
	throw new Error("REQUIRE_PROMETHEUS is set but prometheus is not installed");
const describeWithPrometheus = prometheusInstalled ? describe : describe.skip;

it("has the dashboard read only metrics of moleshop nodes, in queries Grafana can label", () => {
	expect(queries.length).toBeGreaterThan(15);
	for (const { panel, expr } of queries) {
		expect({ panel, metrics: metricsOf(expr).length > 0 }).toEqual({ panel, metrics: true });
	}
	expect(dashboard.uid).toBe("moleshop");
});

it("has docker-compose run Prometheus, Grafana and Zipkin on these files, and Prometheus scrape every node where it serves metrics", () => {
	const nodes = Object.entries<any>(compose.services).filter(([, def]) => def.image?.startsWith("moleshop"));
	const scrape = prometheusConfig.scrape_configs.find((job: any) => job.job_name === "moleshop");
	const [discovery] = scrape.dns_sd_configs;
	expect(new Set(discovery.names)).toEqual(new Set(nodes.map(([name]) => name)));
	for (const [, def] of nodes) expect(String(def.environment.METRICS_PORT)).toBe(String(discovery.port));

	const volumes = (service: string) => (compose.services[service].volumes as string[]).join(" ");
	expect(volumes("prometheus")).toContain("./ops/prometheus/prometheus.yml:");
	expect(volumes("grafana")).toContain("./ops/grafana/provisioning:");
	expect(volumes("grafana")).toContain("./ops/grafana/dashboards:");
	expect(compose.services.zipkin.image).toMatch(/zipkin/);
	const datasources = parse(read("ops/grafana/provisioning/datasources/prometheus.yml")).datasources;
	expect(datasources.map((source: any) => source.uid)).toEqual(expect.arrayContaining(["prometheus", "zipkin"]));
});

describeWithPrometheus("the dashboard against a live node", () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "moleshop-dashboards-"));
	let node: NodeProcess;
	let prometheus: ChildProcess | undefined;
	let promPort: number;
	let exported: Set<string>;
	/** What the node's Zipkin exporter posted to the test's stand-in collector. */
	const spans: Array<{ traceId: string; localEndpoint?: { serviceName?: string } }> = [];
	let collector: http.Server;
	let registered: Set<string>;

	/** Ask the test's Prometheus for `expr` now. */
	async function query(expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
		const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
		return (await res.json()) as any;
	}

	beforeAll(async () => {
		// Four different ports: a port just found free can be found free again by the next call.
		const ports = new Set<number>();
		while (ports.size < 4) ports.add(await freePort());
		const [port, metricsPort, zipkinPort, prometheusPort] = [...ports];
		promPort = prometheusPort;
		collector = http.createServer((req, res) => {
			let body = "";
			req.on("data", chunk => (body += chunk));
			req.on("end", () => {
				if (req.url === "/api/v2/spans") spans.push(...JSON.parse(body));
				res.writeHead(202).end();
			});
		});
		await new Promise<void>(resolve => collector.listen(zipkinPort, "127.0.0.1", resolve));
		node = startNode({
			PORT: String(port),
			METRICS_PORT: String(metricsPort),
			TRACE_EXPORTER: "zipkin",
			ZIPKIN_URL: `http://127.0.0.1:${zipkinPort}`,
			DATA_DIR: dataDir,
			JWT_SECRET: "dashboards-test",
		});
		await waitUntilReady(port);

		const customer = (
			await json(port, "POST", "/auth/register", { name: "Dash", email: "dash@x.io", password: "password123" })
		).body;
		const [mug] = (await json(port, "GET", "/products?q=mug")).body.rows;
		const order = await json(
			port,
			"POST",
			"/orders",
			{ items: [{ productId: mug.id, quantity: 1 }], paymentMethod: "pm_card_visa" },
			customer.token,
		);
		expect(order.body.status).toBe("paid");
		await json(port, "GET", "/products/no-such-product");

		const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
		exported = new Set([...metrics.matchAll(/^# TYPE (\S+) /gm)].map(m => m[1]));
		const sameConfig = await startBroker(ALL_SERVICES, { metrics: { enabled: true, reporter: [] } });
		registered = new Set(
			(sameConfig.metrics.list() as Array<{ name: string }>).map(metric => metric.name.replace(/[.-]/g, "_")),
		);
		await sameConfig.stop();

		const config = path.join(dataDir, "prometheus.yml");
		fs.writeFileSync(
			config,
			[
				"global: { scrape_interval: 1s }",
				"scrape_configs:",
				"  - job_name: moleshop",
				`    static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }]`,
			].join("\n"),
		);
		prometheus = spawn(
			"prometheus",
			[
				`--config.file=${config}`,
				`--storage.tsdb.path=${path.join(dataDir, "tsdb")}`,
				`--web.listen-address=127.0.0.1:${promPort}`,
			],
			{ stdio: "ignore" },
		);
		// Two scrapes at least, so that rates over the window have two points.
		await waitFor(
			async () => {
				const up = await query("count_over_time(up[1m])");
				return Number((up.data?.result[0] as any)?.value?.[1]) >= 3;
			},
			60_000,
			"Prometheus to scrape the node three times",
		);
	}, 120_000);

	afterAll(async () => {
		if (prometheus && prometheus.exitCode === null) {
			const exited = new Promise(resolve => prometheus!.once("exit", resolve));
			prometheus.kill("SIGTERM");
			await exited;
		}
		await node?.stop();
		await new Promise(resolve => collector?.close(resolve));
		fs.rmSync(dataDir, { recursive: true, force: true });
	}, 60_000);

	it("reads only metrics the node exports, or registers for the events that have not happened", () => {
		const read = queries.flatMap(({ expr }) => metricsOf(expr));
		expect(read.filter(name => !exported.has(name) && !registered.has(name))).toEqual([]);
		// Most of them have series after one order: the checkout's, the gateway's, the outbox's, the store's.
		expect(read.filter(name => exported.has(name)).length).toBeGreaterThan(read.length / 2);
	});

	it("asks only valid PromQL", async () => {
		for (const { panel, expr } of queries) {
			const answer = await query(expr.replaceAll("$__rate_interval", "1m"));
			expect({ panel, status: answer.status, error: answer.error }).toEqual({ panel, status: "success" });
		}
	});

	it("shows the order in the checkout panels and the requests in the gateway's", async () => {
		const answered = async (title: string) => {
			const { expr } = queries.find(q => q.panel === title)!;
			return (await query(expr.replaceAll("$__rate_interval", "1m"))).data!.result as any[];
		};
		const routes = (await answered("Request rate per route (action behind it)")).map(
			series => series.metric.action,
		);
		expect(routes).toEqual(expect.arrayContaining(["orders.create", "catalog.view", "users.register"]));
		expect(routes).not.toContain("users.resolveToken"); // the gateway asks it for every signed-in request: not a route
		const finished = await answered("Orders reaching a final state");
		expect(finished.map(series => series.metric.status)).toContain("paid");
	});

	it("exports the checkout as one trace from a node started by moleculer-runner", async () => {
		const services = (traceId: string) =>
			new Set(spans.filter(span => span.traceId === traceId).map(span => span.localEndpoint?.serviceName));
		const checkout = await waitFor(
			async () => {
				const trace = spans.find(span => services(span.traceId).has("orders"))?.traceId;
				return (
					trace && ["api", "orders", "payments", "invoices"].every(name => services(trace).has(name)) && trace
				);
			},
			30_000,
			"the checkout's spans at the Zipkin stand-in",
		);
		expect(checkout).toMatch(/^[0-9a-f]{32}$/);
	});
});
