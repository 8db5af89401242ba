/**
 * The benchmark's report: its figures as markdown tables, and every target of issue 10 (ratios to
 * the raw server of the same run, p99 bounds, memory, ready time) met or not.
 */
import type { MetricsFloor } from "./metrics-floor";
import type { Knee, Measure } from "./load";

export interface WorkloadResult {
	key: string;
	name: string;
	measure: Measure;
	knee: Knee | null;
}

export interface TargetResult {
	name: "node" | "cluster" | "seeded" | "metered" | "observed";
	/** What the store held at the start (0 and 0: the demo catalog). */
	store: { products: number; orders: number };
	readySeconds: number;
	workloads: WorkloadResult[];
	/** RSS of all the target's processes after the shop mix. */
	rssAfterMixMb?: number | null;
	memory?: { orders: number; views: number; rssMb: number | null };
	scaling?: { workload: string; one: Measure; two: Measure; ratio: number | null };
	processes: Array<{ label: string; rssMb: number | null; errors: number; warnings: number; logFile: string }>;
	/** `metered` and `observed`: spans its exporter sent (none when metered), and the scrapes of its metrics while it was measured. */
	observed?: { spans: number; scrapes: number; scrapeBytes: number; traceRate: number; scrapeSeconds: number };
}

export interface BenchResults {
	at: string;
	machine: { cores: number; node: string };
	settings: {
		connections: number;
		seconds: number;
		warmupSeconds: number;
		kneeSteps: number;
		kneeSeconds: number;
		p99BoundMs: number;
		cluster: string;
	};
	raw: Measure | null;
	/** With `metered`: Moleculer's metrics per action call, measured in the bench's process (scripts/bench/metrics-floor.ts). */
	metricsFloor?: MetricsFloor;
	targets: TargetResult[];
	totalSeconds: number;
}

const num = (n: number | null | undefined, digits = 0) => (n == null ? "–" : n.toFixed(digits));
const ms = (n: number | null | undefined) => (n == null ? "–" : n.toFixed(n < 10 ? 2 : 0));

interface Check {
	target: string;
	measured: string;
	met: boolean | null;
}

function workload(t: TargetResult | undefined, key: string) {
	return t?.workloads.find(w => w.key === key);
}

/** Every target of issue 10 that this run measured. */
function checks(r: BenchResults): Check[] {
	const out: Check[] = [];
	const raw = r.raw?.rps;
	const node = r.targets.find(t => t.name === "node");
	const cluster = r.targets.find(t => t.name === "cluster");
	const ratio = (t: TargetResult | undefined, key: string, label: string, min: number, shown: string) => {
		const w = workload(t, key);
		if (!w || !raw) return;
		const x = w.measure.rps / raw;
		out.push({
			target: `${label} ≥ ${shown} raw`,
			measured: `${x.toFixed(3)}× (${w.measure.rps} rps)`,
			met: x >= min,
		});
	};
	const halfP99 = (t: TargetResult | undefined, key: string, label: string, bound: number, strict: boolean) => {
		const half = workload(t, key)?.knee?.atHalf;
		if (!half) return;
		const p99 = half.measure.p99;
		out.push({
			target: `${label}: p99 ${strict ? "<" : "≤"} ${bound} ms at half the max rate`,
			measured: `${p99} ms at ${half.rate}/s (${half.achieved}/s achieved)`,
			met: (strict ? p99 < bound : p99 <= bound) && half.ok,
		});
	};
	ratio(node, "product", "GET product, one node", 0.35, "0.35×");
	ratio(cluster, "product", "GET product, cluster", 0.25, "0.25×");
	halfP99(node, "product", "GET product, one node", 20, false);
	halfP99(cluster, "product", "GET product, cluster", 20, false);
	for (const key of ["page", "search"]) {
		ratio(node, key, `products ${key}, one node`, 0.3, "0.30×");
		ratio(cluster, key, `products ${key}, cluster`, 0.2, "0.20×");
	}
	ratio(node, "checkout", "checkout, one node", 1 / 35, "1/35 of");
	ratio(cluster, "checkout", "checkout, cluster", 1 / 60, "1/60 of");
	halfP99(node, "checkout", "checkout, one node", 50, true);
	halfP99(cluster, "checkout", "checkout, cluster", 50, true);
	if (cluster?.rssAfterMixMb != null) {
		out.push({
			target: `cluster under the mix: < 800 MB RSS in all (${r.settings.cluster} topology, NATS included)`,
			measured: `${num(cluster.rssAfterMixMb)} MB`,
			met: cluster.rssAfterMixMb < 800,
		});
	}
	if (cluster) {
		out.push({
			target: "cluster ready < 5 s (spawn of NATS to the gateway's /ready 200)",
			measured: `${cluster.readySeconds.toFixed(1)} s`,
			met: cluster.readySeconds < 5,
		});
	}
	const seeded = r.targets.find(t => t.name === "seeded");
	if (node && seeded) {
		const size = `${seeded.store.orders} orders, ${seeded.store.products} products`;
		const within = (key: string, what: string, of: (m: Measure) => number, higherIsWorse: boolean) => {
			const empty = workload(node, key)?.measure;
			const full = workload(seeded, key)?.measure;
			if (!empty || !full) return;
			const x = of(full) / Math.max(of(empty), 1);
			out.push({
				target: `${what} with ${size} within 20% of the empty shop's`,
				measured: `${of(full)} vs ${of(empty)} (${x.toFixed(2)}×)`,
				met: higherIsWorse ? x <= 1.2 : x >= 0.8,
			});
		};
		within("checkout", "checkout rate", m => m.rps, false);
		within("page", "products page p99", m => m.p99, true);
		within("search", "products search p99", m => m.p99, true);
	}
	// Issue 11, item 8: metrics (scraped) cost at most 10% of the rate; tracing's cost on top is stated, not bounded.
	for (const [name, cost, bound] of [
		["metered", "metrics on", 0.9],
		["observed", "metrics and tracing on", null],
	] as const) {
		const watched = r.targets.find(t => t.name === name);
		if (!node || !watched) continue;
		for (const [key, what] of [
			["product", "GET product"],
			["checkout", "checkout"],
		]) {
			const off = workload(node, key)?.measure;
			const on = workload(watched, key)?.measure;
			if (!off || !on) continue;
			const x = on.rps / Math.max(off.rps, 1);
			out.push({
				target: `${what}: ${cost} ${bound ? `cost at most ${Math.round((1 - bound) * 100)}% of the rate` : "(stated)"} (one node)`,
				measured: `${on.rps} vs ${off.rps} rps (${x.toFixed(2)}×), CPU ${ms(on.cpuMsPerRequest)} vs ${ms(off.cpuMsPerRequest)} ms/req`,
				met: bound ? x >= bound : null,
			});
		}
	}
	if (node?.memory?.rssMb != null) {
		const { orders, views, rssMb } = node.memory;
		out.push({
			target: "one node < 250 MB after 10,000 orders and 100,000 product views",
			measured: `${num(rssMb)} MB after ${orders} orders, ${views} views`,
			met: rssMb < 250 && orders >= 10_000 && views >= 100_000,
		});
	}
	return out;
}

function targetTable(r: BenchResults, t: TargetResult): string {
	const raw = r.raw?.rps;
	const rows = t.workloads.map(({ name, measure: m, knee }) => {
		const half = knee?.atHalf;
		return (
			`| ${name} | ${m.rps} | ${raw ? (m.rps / raw).toFixed(3) + "×" : "–"} | ${m.p50} / ${m.p99} | ${m.errors} | ` +
			`${ms(m.cpuMsPerRequest)} | ${knee ? knee.rps : "–"} | ${half ? `${half.measure.p99} ms at ${half.rate}/s` : "–"} | ${num(m.rssMb)} |`
		);
	});
	return [
		`| workload | rps | × raw | p50 / p99 ms | failed | CPU ms/req | knee rps (p99 < ${r.settings.p99BoundMs} ms) | p99 at ½ max | RSS MB (all) |`,
		"|---|---|---|---|---|---|---|---|---|",
		...rows,
	].join("\n");
}

/** CPU ms per request of each process, per workload: also the cores each needs per 1,000 requests/s. */
function cpuTable(t: TargetResult): string {
	const labels = t.processes.map(p => p.label);
	return [
		`| workload | ${labels.join(" | ")} |`,
		`|---|${labels.map(() => "---").join("|")}|`,
		...t.workloads.map(
			w =>
				`| ${w.name} | ${labels.map(l => ms(w.measure.processes.find(p => p.label === l)?.cpuMsPerRequest)).join(" | ")} |`,
		),
	].join("\n");
}

function scalingSection(t: TargetResult): string {
	const s = t.scaling!;
	const labels = s.two.processes.map(p => p.label);
	const cpu = (m: Measure, label: string) => ms(m.processes.find(p => p.label === label)?.cpuMsPerRequest);
	const pricing = (m: Measure) =>
		m.processes.filter(p => p.label.startsWith("pricing")).reduce((sum, p) => sum + (p.cpuMsPerRequest ?? 0), 0);
	return [
		`Scaling by brokers — ${s.workload}, bound by the stateless pricing service:`,
		"",
		"| pricing replicas | rps | p50 / p99 ms | failed | " + labels.map(l => `${l} CPU ms/req`).join(" | ") + " |",
		`|---|---|---|---|${labels.map(() => "---").join("|")}|`,
		...[
			["1", s.one],
			["2", s.two],
		].map(
			([n, m]) =>
				`| ${n} | ${(m as Measure).rps} | ${(m as Measure).p50} / ${(m as Measure).p99} | ${(m as Measure).errors} | ` +
				labels.map(l => cpu(m as Measure, l)).join(" | ") +
				" |",
		),
		"",
		`Two replicas answer ${num(s.ratio, 2)}× what one does. CPU ms per request is also the cores a process ` +
			`needs per 1,000 requests/s: per 1,000 quotes/s pricing needs ${pricing(s.two).toFixed(2)} cores ` +
			`(both replicas together; ${pricing(s.one).toFixed(2)} with one), the gateway ` +
			`${cpu(s.two, labels.find(l => l === "gateway" || l === "api") ?? "")}, products ${cpu(s.two, "products")}, ` +
			`NATS ${cpu(s.two, "nats")}. On ${"this machine's"} cores the ratio is bounded by the cores the other ` +
			"processes and the load generator take; the CPU figures are not.",
	].join("\n");
}

export function renderReport(r: BenchResults): string {
	const st = r.settings;
	const parts: string[] = [
		`moleshop bench, ${r.at}: ${r.machine.cores} cores, node ${r.machine.node}; ${st.connections} connections, ` +
			`${st.seconds} s per workload after ${st.warmupSeconds} s of warm-up; knee: ${st.kneeSteps} steps of ` +
			`${st.kneeSeconds} s at constant arrival rates, bisected from half the fixed-concurrency rate. ` +
			`Total run time ${r.totalSeconds} s.`,
	];
	if (r.raw) {
		parts.push(
			`raw node http (the limit): ${r.raw.rps} rps, p50 / p99 ${r.raw.p50} / ${r.raw.p99} ms, ` +
				`${ms(r.raw.cpuMsPerRequest)} CPU ms/req.`,
		);
	}
	for (const t of r.targets) {
		const store =
			t.store.products || t.store.orders ? `${t.store.products} products, ${t.store.orders} orders` : "";
		const observedBy = t.observed
			? `, metrics scraped every ${t.observed.scrapeSeconds} s, ` +
				(t.name === "observed" ? `${t.observed.traceRate * 100}% of requests traced to Zipkin` : "tracing off")
			: "";
		const title =
			t.name === "cluster"
				? `NATS cluster (${st.cluster} topology${store && `, ${store}`})`
				: `One node (every service, embedded store${store ? `: ${store}` : ", empty shop"}${observedBy})`;
		parts.push(`### ${title}, ready in ${t.readySeconds.toFixed(1)} s\n\n${targetTable(r, t)}`);
		parts.push(
			`CPU ms per request by process (= cores per 1,000 requests/s):\n\n${cpuTable(t)}\n\n` +
				"| process | RSS MB at the end | ERROR lines | WARN lines |\n|---|---|---|---|\n" +
				t.processes.map(p => `| ${p.label} | ${num(p.rssMb)} | ${p.errors} | ${p.warnings} |`).join("\n"),
		);
		if (t.memory) {
			parts.push(
				`One node after ${t.memory.orders} orders and ${t.memory.views} product views: ${num(t.memory.rssMb)} MB RSS.`,
			);
		}
		if (t.scaling) parts.push(scalingSection(t));
		if (t.observed)
			parts.push(
				`Exported while measured: ${t.observed.spans} spans, ${t.observed.scrapes} scrapes of ${t.observed.scrapeBytes} bytes each.`,
			);
	}
	if (r.metricsFloor) {
		const f = r.metricsFloor;
		parts.push(
			`Moleculer's metrics alone, in the bench's process (scripts/bench/metrics-floor.ts): a request of two ` +
				`nested local calls takes ${f.offMicros.toFixed(1)} µs with metrics off and ${f.onMicros.toFixed(1)} µs ` +
				`on, so metrics add ${f.perCallMicros.toFixed(1)} µs to every action call.`,
		);
	}
	const list = checks(r);
	if (list.length) {
		parts.push(
			"### Targets (issues 10 and 11)\n\n| target | measured | met |\n|---|---|---|\n" +
				list
					.map(
						c =>
							`| ${c.target} | ${c.measured} | ${c.met === null ? "(no bound)" : c.met ? "met" : "not met"} |`,
					)
					.join("\n"),
		);
	}
	return parts.join("\n\n") + "\n";
}
