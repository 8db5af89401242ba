/**
 * Each node's own report, for the REPL (cluster/repl-commands.ts): its readiness checks (platform/health.ts:
 * the outbox backlog of its services, its store, transporter and JetStream with the dead-letter count) and the
 * state of every circuit it keeps. A circuit lives in the calling node's breaker, so only that node can tell:
 * every node runs the internal service `$shop`, and the REPL asks each one by its node id.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { readiness, type Readiness } from "./health";

/** A circuit as the calling node's breaker keeps it (Moleculer's CircuitBreakerStore). */
interface BreakerItem {
	state: string;
	count: number;
	failures: number;
	ep: { action: { name: string }; node: { id: string } };
}

export interface CircuitRow {
	/** The endpoint called: an action on a node. */
	action: string;
	nodeID: string;
	/** Moleculer's state: "close", "open", "half_open" or "half_open_wait". */
	state: string;
	/** Calls and failures in the current window. */
	count: number;
	failures: number;
}

export interface NodeReportAnswer {
	nodeID: string;
	readiness: Readiness;
	circuits: CircuitRow[];
}

/** The circuits this node's breaker keeps, whatever their state. */
function circuitsOf(broker: ServiceBroker): CircuitRow[] {
	const store = (broker as unknown as { CircuitBreakerStore?: Map<string, BreakerItem> }).CircuitBreakerStore;
	return [...(store?.values() ?? [])].map(item => ({
		action: item.ep.action.name,
		nodeID: item.ep.node.id,
		state: item.state,
		count: item.count,
		failures: item.failures,
	}));
}

/** Broker middleware: every node serves `$shop.report` (internal, never routed by the gateway). */
export function NodeReport(): Middleware {
	return {
		name: "NodeReport",
		created(broker: ServiceBroker) {
			broker.createService({
				name: "$shop",
				actions: {
					report: {
						visibility: "public",
						async handler(): Promise<NodeReportAnswer> {
							return {
								nodeID: broker.nodeID,
								readiness: await readiness(broker),
								circuits: circuitsOf(broker),
							};
						},
					},
				},
			});
		},
	};
}
