/**
 * What Moleculer's own metrics cost per action call, measured in the bench's process, away from HTTP,
 * the store and the machine's noise between processes: a broker with two services, one action calling
 * the other (as the gateway's `api.rest` calls `catalog.get` for a GET product), with metrics off and on
 * (Prometheus reporter, Moleculer's default buckets and quantiles), alternated, best of each kept.
 *
 * It is the floor under the `metered` target: every local call goes through Moleculer's metrics
 * middleware, which updates five metrics (total, active up and down, levels, the time histogram), each
 * update turning its labels into a string key.
 */
import { ServiceBroker } from "moleculer";

export interface MetricsFloor {
	/** Microseconds per request of two nested calls, metrics off and on. */
	offMicros: number;
	onMicros: number;
	/** (on - off) / 2: what metrics add to one action call. */
	perCallMicros: number;
}

async function microsPerRequest(metrics: boolean, requests: number): Promise<number> {
	const broker = new ServiceBroker({
		nodeID: `metrics-floor-${metrics ? "on" : "off"}`,
		logger: false,
		transporter: null,
		metrics: metrics ? { enabled: true, reporter: [{ type: "Prometheus", options: { port: 0 } }] } : false,
	});
	broker.createService({
		name: "catalog",
		actions: {
			get: {
				params: { id: "string" },
				handler: ctx => ({ id: (ctx.params as { id: string }).id, name: "Mug", price: 1299 }),
			},
		},
	});
	broker.createService({ name: "api", actions: { rest: { handler: ctx => ctx.call("catalog.get", { id: "p1" }) } } });
	await broker.start();
	try {
		for (let i = 0; i < requests / 4; i++) await broker.call("api.rest"); // warm-up: optimised code
		const start = process.hrtime.bigint();
		for (let i = 0; i < requests; i++) await broker.call("api.rest");
		return Number(process.hrtime.bigint() - start) / requests / 1000;
	} finally {
		await broker.stop();
	}
}

/** Three rounds of off and on; the fastest of each (the least disturbed by the machine). */
export async function measureMetricsFloor(requests = 100_000): Promise<MetricsFloor> {
	const off: number[] = [];
	const on: number[] = [];
	for (let round = 0; round < 3; round++) {
		off.push(await microsPerRequest(false, requests));
		on.push(await microsPerRequest(true, requests));
	}
	const offMicros = Math.min(...off);
	const onMicros = Math.min(...on);
	return { offMicros, onMicros, perCallMicros: (onMicros - offMicros) / 2 };
}
