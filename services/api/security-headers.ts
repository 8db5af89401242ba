/**
 * Security headers on every answer of the gateway, from helmet (the maintained set of them), set before
 * moleculer-web sees the request: so a route's answer, an error, a 404 of no route, /health, /ready and
 * the docs page all carry them.
 *
 * What the gateway answers is JSON, so the Content-Security-Policy allows nothing at all (a browser
 * that is tricked into rendering an answer runs nothing and frames nothing); a page the gateway serves
 * sets its own, as strict as the page allows (services/api/docs-page.ts). Strict-Transport-Security
 * only when configured (HSTS_MAX_AGE), that is behind TLS: a browser that saw it over plain HTTP on
 * localhost would refuse that host's plain HTTP for the max-age.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import helmet from "helmet";

/** helmet with the gateway's choices; `hstsMaxAge` in seconds, 0 for none. */
export function securityHeaders(hstsMaxAge: number) {
	return helmet({
		contentSecurityPolicy: {
			useDefaults: false,
			directives: {
				"default-src": ["'none'"],
				"base-uri": ["'none'"],
				"form-action": ["'none'"],
				"frame-ancestors": ["'none'"],
			},
		},
		strictTransportSecurity: hstsMaxAge > 0 ? { maxAge: hstsMaxAge, includeSubDomains: true } : false,
		referrerPolicy: { policy: "no-referrer" },
		xFrameOptions: { action: "deny" },
	});
}

/** Set the security headers on every response of `server`, before its own request handler runs. */
export function addSecurityHeaders(server: Server, hstsMaxAge: number): void {
	const headers = securityHeaders(hstsMaxAge);
	server.prependListener("request", (req: IncomingMessage, res: ServerResponse) =>
		headers(req, res, () => undefined),
	);
}
