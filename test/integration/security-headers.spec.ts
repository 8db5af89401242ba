/**
 * Security headers (services/api/security-headers.ts): every answer of the gateway carries them — a
 * route's answer, a refusal, a 404 of no route, /health, /ready — and the docs page keeps its own,
 * stricter-than-default page policy. Strict-Transport-Security only when HSTS_MAX_AGE is set.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { addSecurityHeaders } from "../../services/api/security-headers";
import { startShop, type Shop } from "../helpers/shop";

/** The headers every answer must carry, whatever it is. */
function expectSecurityHeaders(headers: Headers) {
	expect(headers.get("x-content-type-options")).toBe("nosniff");
	expect(headers.get("referrer-policy")).toBe("no-referrer");
	expect(headers.get("x-frame-options")).toBe("DENY");
	expect(headers.get("cross-origin-opener-policy")).toBe("same-origin");
	expect(headers.get("x-powered-by")).toBeNull();
	expect(headers.get("strict-transport-security")).toBeNull(); // not configured: plain HTTP here
}

describe("the gateway's security headers", () => {
	let shop: Shop;
	beforeAll(async () => {
		shop = await startShop();
	});
	afterAll(() => shop?.stop());

	it("are on answers, refusals, unknown paths, health and readiness, with a CSP that allows nothing", async () => {
		const answers = [
			await shop.request("GET", "/api/v1/products"),
			await shop.request("GET", "/api/v1/products/no-such-product"),
			await shop.request("GET", "/api/v1/orders"), // 401: no token
			await shop.request("POST", "/api/v1/auth/login", { body: { email: "nobody" } }), // 422
			await shop.request("GET", "/no/such/route"),
			await shop.request("GET", "/health"),
			await shop.request("GET", "/ready"),
			await shop.request("GET", "/api/v1/openapi.json"),
		];
		expect(answers.map(a => a.status)).toEqual([200, 404, 401, 422, 404, 200, 200, 200]);
		for (const { headers } of answers) {
			expectSecurityHeaders(headers);
			expect(headers.get("content-security-policy")).toBe(
				"default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
			);
		}
	});

	it("leave the docs page its own policy, which loads only the page's own scripts and styles", async () => {
		const page = await shop.request("GET", "/api/v1/docs");
		expect(page.status).toBe(200);
		expectSecurityHeaders(page.headers);
		const csp = page.headers.get("content-security-policy")!;
		expect(csp).toMatch(/script-src 'self'/);
		expect(csp).not.toMatch(/unsafe-eval|https?:/);
	});
});

describe("Strict-Transport-Security", () => {
	async function headersOf(hstsMaxAge: number) {
		const server = http.createServer((req, res) => res.end("{}"));
		addSecurityHeaders(server, hstsMaxAge);
		await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
		try {
			const { port } = server.address() as AddressInfo;
			return (await fetch(`http://127.0.0.1:${port}/`)).headers;
		} finally {
			await new Promise(resolve => server.close(resolve));
		}
	}

	it("is sent with HSTS_MAX_AGE's max-age, and not at all without it", async () => {
		expect((await headersOf(31_536_000)).get("strict-transport-security")).toBe(
			"max-age=31536000; includeSubDomains",
		);
		expect((await headersOf(0)).get("strict-transport-security")).toBeNull();
	});
});
