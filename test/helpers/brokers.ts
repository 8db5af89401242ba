/**
 * Brokers with the real broker options (moleculer.config.ts) for the tests that need what
 * startShop does not give: fault injection (faults.ts) around every handler, and several nodes
 * in one process on Moleculer's Fake transporter, each cluster in a namespace of its own.
 */
import type { AddressInfo } from "node:net";
import { ServiceBroker, type BrokerOptions, type Middleware, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { EVENT_TYPES } from "../../contracts/events";
import { channelsMiddleware } from "../../platform/channels";
import { config } from "../../platform/config";
import { dropDatabase } from "./database";
import type { Faults } from "./faults";

let clusters = 0;

/**
 * The configured middlewares for one more broker: the channels middleware keeps its broker and
 * adapter, so each broker of a process needs its own.
 */
function middlewaresFor(faults?: Faults): Middleware[] {
	const configured = (brokerConfig.middlewares ?? []).map(mw =>
		(mw as Middleware)?.name === "Channels" ? (channelsMiddleware(EVENT_TYPES) as Middleware) : mw,
	) as Middleware[];
	return faults ? [faults.middleware, ...configured] : configured;
}

export class TestCluster {
	readonly namespace = `test-${process.pid}-${Date.now().toString(36)}-${++clusters}`;
	private readonly brokers: ServiceBroker[] = [];
	private stateful = false;

	/** `transporter: null` for a broker alone (no transit, as startShop runs it). */
	constructor(private readonly transporter: "Fake" | null = "Fake") {}

	/** A started node of this cluster running `services`, with `faults` right around each handler (and broker `options`). */
	async start(
		nodeID: string,
		services: ServiceSchema<any, any>[],
		faults?: Faults,
		options: Partial<BrokerOptions> = {},
	): Promise<ServiceBroker> {
		const broker = new ServiceBroker({
			...brokerConfig,
			...options,
			nodeID,
			namespace: this.namespace,
			transporter: this.transporter,
			middlewares: middlewaresFor(faults),
		});
		this.brokers.push(broker);
		if (services.some(schema => !["api", "pricing", "events"].includes(schema.name))) this.stateful = true;
		for (const schema of services) broker.createService(schema);
		await broker.start();
		return broker;
	}

	/** Stop one node (it leaves the cluster gracefully). */
	async stopNode(broker: ServiceBroker) {
		await broker.stop();
		this.brokers.splice(this.brokers.indexOf(broker), 1);
	}

	/** Stop every node; on MongoDB then drop the test file's database, so the next cluster starts empty. */
	async stop() {
		await Promise.all(this.brokers.splice(0).map(broker => broker.stop()));
		if (config.mongoUri && this.stateful) await dropDatabase(config.mongoUri);
	}
}

export interface Answer<T = any> {
	status: number;
	headers: Headers;
	body: T;
	/** How long the answer took, in ms. */
	ms: number;
}

export interface RequestOptions {
	token?: string;
	body?: unknown;
	headers?: Record<string, string>;
}

/** An HTTP client of the gateway (the api service) that `broker` runs. */
export function gatewayOf(broker: ServiceBroker) {
	const { port } = (broker.getLocalService("api") as any).server.address() as AddressInfo;
	const base = `http://127.0.0.1:${port}`;
	return {
		port,
		async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<Answer<T>> {
			const headers: Record<string, string> = { ...opts.headers };
			if (opts.token) headers.authorization = `Bearer ${opts.token}`;
			if (opts.body !== undefined) headers["content-type"] = "application/json";
			const sent = Date.now();
			const res = await fetch(base + path, {
				method,
				headers,
				body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
			});
			const text = await res.text();
			let body: any = text;
			try {
				body = text ? JSON.parse(text) : null;
			} catch {
				// not JSON: keep the text
			}
			return { status: res.status, headers: res.headers, body, ms: Date.now() - sent };
		},
	};
}
