/**
 * Broker middleware that logs every circuit breaker state change, so an
 * operator sees when a node stops calling a failing endpoint and when it
 * tries again.
 */
import type { Middleware, ServiceBroker } from "moleculer";

/** What Moleculer's circuit breaker says about an endpoint when its state changes. */
interface CircuitChange {
	nodeID: string;
	action: string;
	failures?: number;
	count?: number;
}

export const CircuitLogger: Middleware = {
	name: "CircuitLogger",
	created(broker: ServiceBroker) {
		const logger = broker.getLogger("circuit");
		broker.localBus.on("$circuit-breaker.opened", ({ nodeID, action, failures, count }: CircuitChange) =>
			logger.warn(
				`Circuit OPEN for '${action}' on node ${nodeID} (${failures} of ${count} calls failed): calls go elsewhere or fail fast.`,
			),
		);
		broker.localBus.on("$circuit-breaker.half-opened", ({ nodeID, action }: CircuitChange) =>
			logger.info(`Circuit HALF-OPEN for '${action}' on node ${nodeID}: trying one call.`),
		);
		broker.localBus.on("$circuit-breaker.closed", ({ nodeID, action }: CircuitChange) =>
			logger.info(`Circuit CLOSED for '${action}' on node ${nodeID}: calls flow again.`),
		);
	},
};
