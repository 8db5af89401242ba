/**
 * api: the moleculer-web gateway, the only door into the cluster.
 *
 * - Everything under `/api/v1`; `/health` (liveness) and `/ready` (readiness) outside it.
 * - `Authorization: Bearer <JWT>` is resolved by `users.resolveToken`; only the
 *   trimmed user `{ id, role }` travels on `ctx.meta.user`.
 * - Access is declared on each action (`auth: "public" | "user" | "admin"`) and
 *   enforced here, in `authorize`, for every route.
 * - Errors leave as `{ name, message, code, type, data }`, never with a stack;
 *   a 5xx never says more than that something went wrong.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Service, ServiceBroker, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import bodyParser from "body-parser";
import { config } from "../../platform/config";
import { isClientRefusal } from "../../platform/errors";
import { httpStatusOf, liveness, readiness, statusOf, type CheckResult } from "../../platform/health";
import { badRequest, forbidden, notFound, refusal, unauthorized } from "../../contracts/errors";
import type { Access, AuthUser, ShopContext } from "../../contracts/context";
import { buildOpenApi, type RouteAlias } from "../../platform/openapi";
import { gatewayRouteDocs, operationDocs } from "./api-docs";
import { sendDocsAsset, sendDocsPage } from "./docs-page";
import { addSecurityHeaders } from "./security-headers";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7E]{1,255}$/;
const MAX_TOKEN_LENGTH = 4096;
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** What a 5xx says: the kind of failure and nothing about the inside. */
const SERVER_ERRORS: Record<number, { name: string; message: string; type: string }> = {
	500: { name: "InternalServerError", message: "Something went wrong. Please try again.", type: "INTERNAL_ERROR" },
	503: {
		name: "ServiceUnavailableError",
		message: "The service is temporarily unavailable. Please try again.",
		type: "SERVICE_UNAVAILABLE",
	},
	504: { name: "GatewayTimeoutError", message: "The request timed out. Please try again.", type: "TIMEOUT" },
};

/**
 * Moleculer errors that mean "no node can take this call now" — none available,
 * every circuit open, the queue full, the node left mid-call — all answered 503.
 * A timeout (REQUEST_TIMEOUT, 504) stays 504.
 */
const UNAVAILABLE = new Set(["SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND", "QUEUE_FULL", "REQUEST_REJECTED"]);
/** A nested call skipped because the request's time budget ran out is a timeout too. */
const TIMED_OUT = new Set(["REQUEST_TIMEOUT", "REQUEST_SKIPPED"]);

/** moleculer-web's own refusals: an unknown route, an undecodable parameter, a forbidden origin, a rate limit. */
const { Errors: WebErrors } = ApiGateway;
const GATEWAY_REFUSALS = [
	WebErrors.BadRequestError,
	WebErrors.InvalidRequestBodyError,
	WebErrors.UnAuthorizedError,
	WebErrors.ForbiddenError,
	WebErrors.NotFoundError,
	WebErrors.RateLimitExceeded,
];

/** An error as the gateway meets it: Moleculer's and moleculer-web's carry a code, a type and data. */
type ShopError = Error & { code?: number; type?: string; data?: unknown };

/**
 * The HTTP status of an error. Only refusals keep their own status (4xx): moleshop's
 * (platform/errors.ts, isClientRefusal) and the gateway's. Anything else is a failure, answered
 * 503, 504 or 500, whatever code it carries: a store's error codes (MongoDB's 449, 11000)
 * are not HTTP statuses.
 */
function httpStatus(err: ShopError): number {
	if (UNAVAILABLE.has(err?.type ?? "") || err instanceof WebErrors.ServiceUnavailableError) return 503;
	if (TIMED_OUT.has(err?.type ?? "")) return 504;
	if (isClientRefusal(err) || GATEWAY_REFUSALS.some(Refusal => err instanceof Refusal)) return err.code!;
	return 500;
}

type Req = IncomingMessage & { $action?: { auth?: Access }; $ctx?: ShopContext };

/** REST contract v1: `METHOD path` → action. */
const aliases: Record<string, string> = {
	"POST /auth/register": "users.register",
	"POST /auth/login": "users.login",
	"GET /users/me": "users.me",
	"PATCH /users/me": "users.updateMe",
	"GET /users": "users.list",

	"GET /products": "catalog.list",
	"GET /products/:id": "catalog.view",
	"POST /products": "products.create",
	"PATCH /products/:id": "products.update",
	"DELETE /products/:id": "products.remove",

	"GET /cart": "carts.get",
	"PUT /cart/items/:productId": "carts.setItem",
	"DELETE /cart": "carts.clear",

	"POST /quote": "pricing.quote",

	"POST /orders": "orders.create",
	"GET /orders": "orders.list",
	"GET /orders/:id": "orders.get",
	"POST /orders/:id/cancel": "orders.cancel",
	"GET /orders/:id/invoice": "invoices.forOrder",

	"GET /notifications": "notifications.list",

	"GET /analytics/summary": "analytics.summary",
	"GET /analytics/products/top": "analytics.topProducts",

	"GET /admin/dead-letters": "events.deadLetters",
	"POST /admin/dead-letters/:seq/redrive": "events.redrive",
};

/** The services the gateway routes to: it is ready when all of them are available. */
const REQUIRED_SERVICES = [...new Set(Object.values(aliases).map(action => action.split(".")[0]))];

/** JSON.parse reviver: refuse keys that would reach object prototypes. */
function refusePrototypeKeys(key: string, value: unknown) {
	if (FORBIDDEN_KEYS.has(key)) throw new SyntaxError(`The key "${key}" is not allowed`);
	return value;
}

/** Use the caller's X-Request-Id as the request id when it is sane, otherwise a new one. */
function useRequestId(options: { requestID?: string }, req: IncomingMessage) {
	const given = req.headers["x-request-id"];
	options.requestID = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

const parseJson = bodyParser.json({ limit: config.bodyLimit, strict: true, reviver: refusePrototypeKeys });

/**
 * JSON bodies, with body-parser's errors (bad JSON, bad encoding, too large)
 * turned into client errors before moleculer-web sees them.
 */
function jsonBody(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) {
	parseJson(req, res, (err?: Error & { type?: string; status?: number }) => {
		if (!err) return next();
		if (err.type === "entity.too.large")
			return next(refusal(413, "PAYLOAD_TOO_LARGE", `Request body is larger than ${config.bodyLimit}`));
		const status = err.status === 415 ? 415 : 400; // an unsupported encoding or charset is 415
		const type = err.type === "entity.parse.failed" ? "MALFORMED_JSON" : "UNREADABLE_BODY";
		next(
			refusal(
				status,
				type,
				`${type === "MALFORMED_JSON" ? "Malformed JSON body" : "Unreadable request body"}: ${err.message}`,
			),
		);
	});
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
	res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
	res.end(JSON.stringify(body));
}

/** Whether some node serves `name` (Moleculer's typings ask for a node id; without one the registry answers for any node). */
const servedAnywhere = (broker: ServiceBroker, name: string) =>
	(broker.registry.hasService as (fullName: string) => boolean).call(broker.registry, name);

/** The gateway's own methods (moleculer-web calls authenticate, authorize and its error handlers). */
interface ApiMethods {
	publicErrorData(err: ShopError): unknown;
	openApiDocument(): Promise<object>;
	/** moleculer-web's: answer `err` through `onError`. */
	sendError(req: Req, res: ServerResponse, err: unknown): void;
}

const ApiService: ServiceSchema<ApiSettingsSchema> = {
	name: "api",
	mixins: [ApiGateway as unknown as Partial<ServiceSchema>],

	settings: {
		port: config.port,
		ip: "0.0.0.0",
		logRequest: "debug",
		logResponse: "debug",
		logRequestParams: null,
		log4XXResponses: false,

		// moleculer-web also takes a function here (its typings know only the object form).
		rootCallOptions: useRequestId as unknown as ApiSettingsSchema["rootCallOptions"],

		routes: [
			{
				path: "/",
				bodyParsers: false,
				mappingPolicy: "restrict",
				aliases: {
					/** Liveness: the broker runs (platform/health.ts). */
					"GET health"(this: Service, req: Req, res: ServerResponse) {
						const alive = liveness(this.broker);
						sendJson(res, httpStatusOf(alive.status), alive);
					},
					/**
					 * Readiness: this node's checks (platform/health.ts), and every routed service available
					 * somewhere in the cluster (the `services` check, with what is `missing`).
					 */
					async "GET ready"(this: Service, req: Req, res: ServerResponse) {
						const node = await readiness(this.broker);
						const missing = REQUIRED_SERVICES.filter(name => !servedAnywhere(this.broker, name));
						const services: CheckResult = {
							ok: missing.length === 0,
							...(missing.length ? { reason: "missing" } : {}),
						};
						const checks = { ...node.checks, services };
						const status = statusOf(Object.values(checks));
						if (status === "unavailable") res.setHeader("Retry-After", "1");
						sendJson(res, httpStatusOf(status), { status, nodeID: node.nodeID, missing, checks });
					},
					/** The REST contract as OpenAPI 3, generated from the routes and the actions' schemas. */
					async "GET api/v1/openapi.json"(this: Service & ApiMethods, req: Req, res: ServerResponse) {
						try {
							sendJson(res, 200, await this.openApiDocument());
						} catch (err) {
							this.sendError(req, res, err);
						}
					},
					/** The interactive docs page and its assets (swagger-ui, served from node_modules). */
					"GET api/v1/docs"(req: Req, res: ServerResponse) {
						sendDocsPage(res);
					},
					"GET api/v1/docs/:file"(
						this: Service & ApiMethods,
						req: Req & { $params: { file: string } },
						res: ServerResponse,
					) {
						if (!sendDocsAsset(res, req.$params.file)) this.sendError(req, res, notFound("Docs file"));
					},
				},
			},
			{
				path: "/api/v1",
				mappingPolicy: "restrict",
				authentication: true,
				authorization: true,
				bodyParsers: false,
				use: [jsonBody],
				aliases,

				/**
				 * Writes take their input from the body and the path only (a query string
				 * would override body fields and lands in access logs); carry the
				 * Idempotency-Key header to the action.
				 */
				onBeforeCall(ctx: ShopContext, route: unknown, req: Req & { query?: object }) {
					if (req.method !== "GET" && req.query && Object.keys(req.query).length > 0) {
						throw badRequest(`${req.method} requests take no query parameters`);
					}
					const key = req.headers["idempotency-key"];
					if (key === undefined) return;
					if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key)) {
						throw badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters");
					}
					ctx.meta.idempotencyKey = key;
				},
			},
		],

		/** Every error response is built here. */
		onError(this: Service & ApiMethods, req: Req, res: ServerResponse, err: ShopError) {
			const code = httpStatus(err);
			const body =
				code < 500
					? { name: err.name, message: err.message, code, type: err.type, data: this.publicErrorData(err) }
					: { code, ...(SERVER_ERRORS[code] ?? SERVER_ERRORS[500]) };
			if (code === 503) res.setHeader("Retry-After", "1");
			sendJson(res, code, body);
		},
	},

	actions: {
		// moleculer-web's HTTP handler: never re-run (the request body is already read). The calls it makes are retried by their own policies.
		rest: { retryPolicy: { enabled: false } },
	},

	methods: {
		/** Resolve a Bearer token to the trimmed user; no header means an anonymous caller. */
		async authenticate(ctx: ShopContext, route: unknown, req: Req): Promise<AuthUser | null> {
			const header = req.headers.authorization;
			if (!header) return null;
			const [scheme, token, extra] = header.split(" ");
			if (scheme !== "Bearer" || !token || extra !== undefined)
				throw unauthorized("Authorization must be 'Bearer <token>'");
			if (token.length > MAX_TOKEN_LENGTH) throw unauthorized("Invalid or expired token");
			const user = await ctx.call<AuthUser | null, { token: string }>("users.resolveToken", { token });
			if (!user) throw unauthorized("Invalid or expired token");
			return { id: user.id, role: user.role };
		},

		/** Enforce the action's declared access level. An action that declares none is admin-only. */
		authorize(ctx: ShopContext, route: unknown, req: Req) {
			const access: Access = req.$action?.auth ?? "admin";
			if (access === "public") return;
			const user = ctx.meta.user;
			if (!user) throw unauthorized();
			if (access === "admin" && user.role !== "admin") throw forbidden();
		},

		/** Log real failures (not client errors), then answer through `onError`. */
		errorHandler(req: Req, res: ServerResponse, err: ShopError) {
			const status = httpStatus(err);
			if (status === 503 || status === 504) this.logger.warn(`${req.method} ${req.url}: ${err.message}`);
			else if (status >= 500) this.logger.error("Request failed:", req.method, req.url, err);
			this.sendError(req, res, err);
		},

		/** The OpenAPI document of every alias this gateway routes, with the actions' params as the registry knows them. */
		async openApiDocument(this: Service) {
			const routes = await this.broker.call<RouteAlias[], object>("api.listAliases", { withActionSchema: true });
			return buildOpenApi({
				title: "moleshop REST API",
				version: "1",
				description: "Generated from the gateway's routes and each action's parameter schema and access level.",
				aliases: routes.filter(alias => alias.actionName),
				docs: operationDocs,
				functionRoutes: gatewayRouteDocs,
			});
		},

		/** Validation details without the submitted values (they may be passwords). */
		publicErrorData(err: ShopError) {
			if (!Array.isArray(err.data)) return err.data;
			return err.data.map(({ actual, ...rest }: Record<string, unknown>) => rest);
		},
	},

	/** moleculer-web made its server in its own `created`: every answer of it gets the security headers. */
	created(this: Service & { server?: Server }) {
		if (this.server) addSecurityHeaders(this.server, config.hstsMaxAge);
	},
};

export default ApiService;
