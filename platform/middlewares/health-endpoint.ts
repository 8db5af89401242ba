/**
 * Broker middleware: with HEALTH_PORT set, a node answers `GET /health` on
 * that port — 200 while it is started and connected to its transporter, 503
 * otherwise. Containers that run no gateway use it for their healthcheck.
 */
import http from "node:http";
import type { Middleware, ServiceBroker } from "moleculer";

export function HealthEndpoint(port: number | undefined): Middleware {
	let server: http.Server | undefined;
	return {
		name: "HealthEndpoint",
		async started(broker: ServiceBroker) {
			if (!port) return;
			server = http.createServer((req, res) => {
				const healthy = broker.started && (!broker.transit || broker.transit.connected);
				res.writeHead(healthy ? 200 : 503, { "Content-Type": "application/json" });
				res.end(JSON.stringify({ status: healthy ? "ok" : "unavailable", nodeID: broker.nodeID }));
			});
			// A taken port stops the node with that error, rather than leaving it without a health endpoint.
			await new Promise<void>((resolve, reject) => {
				server!.once("error", reject);
				server!.listen(port, resolve);
			});
		},
		stopped() {
			return new Promise<void>(resolve => (server ? server.close(() => resolve()) : resolve()));
		},
	};
}
