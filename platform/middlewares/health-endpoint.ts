/**
 * Broker middleware: with HEALTH_PORT set, a node answers on that port, outside its request path (its
 * own small HTTP server, no action call):
 * - `GET /health`: alive — 200 while the broker runs, 503 otherwise (a restart is the cure);
 * - `GET /ready`: able to serve — the checks of platform/health.ts with their reasons; 200 when ready
 *   or degraded, 503 (with Retry-After) when a store, the transporter or JetStream is not there.
 * Containers that run no gateway use it for their healthcheck.
 */
import http from "node:http";
import type { Middleware, ServiceBroker } from "moleculer";
import { httpStatusOf, liveness, readiness } from "../health";

function send(res: http.ServerResponse, body: { status: "ok" | "ready" | "degraded" | "unavailable" }) {
	const status = httpStatusOf(body.status);
	const headers: http.OutgoingHttpHeaders = { "Content-Type": "application/json", "Cache-Control": "no-store" };
	if (status === 503) headers["Retry-After"] = "1";
	res.writeHead(status, headers);
	res.end(JSON.stringify(body));
}

export function HealthEndpoint(port: number | undefined): Middleware {
	let server: http.Server | undefined;
	return {
		name: "HealthEndpoint",
		async started(broker: ServiceBroker) {
			if (!port) return;
			server = http.createServer((req, res) => {
				const path = (req.url ?? "/").split("?")[0];
				if (req.method !== "GET" || (path !== "/health" && path !== "/ready")) {
					res.writeHead(404, { "Content-Type": "application/json" });
					return res.end(JSON.stringify({ status: "not found", paths: ["/health", "/ready"] }));
				}
				if (path === "/health") return send(res, liveness(broker));
				readiness(broker).then(
					answer => send(res, answer),
					() => send(res, { status: "unavailable" }),
				);
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
