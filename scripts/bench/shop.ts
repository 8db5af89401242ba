/**
 * The shop the benchmark drives: what each workload needs set up beforehand (customers signed up
 * with their tokens, carts with lines, stock high enough for every checkout of the run), and the
 * workloads themselves as request makers over the REST API (services/api/api.service.ts).
 */
import type autocannon from "autocannon";

export const ADMIN = { email: "bench-admin@bench.moleshop", password: "bench admin password" };
const CUSTOMER_PASSWORD = "bench customer password";
/** Stock set on every product the workloads buy (the catalog's maximum). */
const BENCH_STOCK = 1_000_000;
/** How many products the workloads spread over (views, carts, orders). */
const HOT_PRODUCTS = 20;
const JSON_HEADERS = { "Content-Type": "application/json" };

export interface Customer {
	email: string;
	password: string;
	token: string;
}

/** What the workloads of one target use. */
export interface Fixture {
	products: string[];
	customers: Customer[];
	/** Distinguishes this run's Idempotency-Keys from any earlier run's on the same store. */
	runId: string;
	/** The next Idempotency-Key's number. */
	keys: number;
	/** Product views and checkouts sent so far (for the memory figures). */
	sent: { views: number; orders: number };
}

/** A request of the set-up. */
interface Call {
	method: string;
	path: string;
	headers?: Record<string, string>;
	body?: string;
}

async function call<T>(api: string, spec: Call, expect: number[]): Promise<T> {
	const res = await fetch(`${api}${spec.path}`, { method: spec.method, headers: spec.headers, body: spec.body });
	const text = await res.text();
	if (!expect.includes(res.status)) throw new Error(`${spec.method} ${spec.path}: ${res.status} ${text}`);
	return (text ? JSON.parse(text) : null) as T;
}

const bearer = (token: string) => ({ ...JSON_HEADERS, Authorization: `Bearer ${token}` });

/** Run `task` over `items`, `width` at a time (sign-ups wait on the hashing bulkhead, 4 at once per node). */
async function inBatches<T, R>(items: T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
	const results: R[] = [];
	for (let i = 0; i < items.length; i += width)
		results.push(...(await Promise.all(items.slice(i, i + width).map(task))));
	return results;
}

/**
 * Sign up `customers` customers, give each a cart of two lines, and set the stock of the products
 * the workloads use to BENCH_STOCK (as the admin the node was started with).
 */
export async function prepareShop(api: string, customers: number): Promise<Fixture> {
	const runId = Date.now().toString(36);
	const page = await call<{ rows: Array<{ id: string }> }>(
		api,
		{ method: "GET", path: `/api/v1/products?pageSize=${HOT_PRODUCTS}&sort=createdAt` },
		[200],
	);
	const products = page.rows.map(row => row.id);
	if (products.length === 0) throw new Error("the catalog is empty");
	const admin = await call<{ token: string }>(
		api,
		{ method: "POST", path: "/api/v1/auth/login", headers: JSON_HEADERS, body: JSON.stringify(ADMIN) },
		[200],
	);
	for (const id of products) {
		await call(
			api,
			{
				method: "PATCH",
				path: `/api/v1/products/${id}`,
				headers: bearer(admin.token),
				body: JSON.stringify({ stock: BENCH_STOCK }),
			},
			[200],
		);
	}
	const signedUp = await inBatches(
		Array.from({ length: customers }, (_, i) => i),
		8,
		async i => {
			const email = `bench-${runId}-${i}@bench.moleshop`;
			const { token } = await call<{ token: string }>(
				api,
				{
					method: "POST",
					path: "/api/v1/auth/register",
					headers: JSON_HEADERS,
					body: JSON.stringify({ name: `Bench customer ${i}`, email, password: CUSTOMER_PASSWORD }),
				},
				[201],
			);
			for (const productId of [products[i % products.length], products[(i + 1) % products.length]]) {
				await call(
					api,
					{
						method: "PUT",
						path: `/api/v1/cart/items/${productId}`,
						headers: bearer(token),
						body: JSON.stringify({ quantity: 1 }),
					},
					[200],
				);
			}
			return { email, password: CUSTOMER_PASSWORD, token };
		},
	);
	return { products, customers: signedUp, runId, keys: 0, sent: { views: 0, orders: 0 } };
}

/**
 * A workload: its name in the report, its key in BENCH_WORKLOADS, and its requests. Requests are
 * built once and cycled through (autocannon sends a prebuilt request far faster than it builds one:
 * rebuilding each request costs the load generator about 40% of its rate); only what must differ per
 * request (a checkout's Idempotency-Key) is set per request, by `setupRequest`.
 */
export interface Workload {
	key: string;
	name: string;
	requests(fixture: Fixture): RequestList;
}

/** The requests of a workload, and which share of them are product views and checkouts (for the memory figures). */
export interface RequestList {
	requests: autocannon.Request[];
	views: number;
	orders: number;
}

const get = (path: string, headers?: Record<string, string>): autocannon.Request => ({
	method: "GET",
	path,
	...(headers && { headers }),
});
const send = (method: "POST" | "PUT", path: string, body: object, headers: Record<string, string>) =>
	({ method, path, headers, body: JSON.stringify(body) }) as autocannon.Request;
const each = <T>(list: T[], make: (item: T, i: number) => autocannon.Request) => list.map(make);

/** The requests each workload (and the mix) is made of. */
const requests = {
	product: (f: Fixture) => each(f.products, id => get(`/api/v1/products/${id}`)),
	search: () => [get("/api/v1/products?q=mug&pageSize=20")],
	page: () => [get("/api/v1/products?sort=price&pageSize=20")],
	cart: (f: Fixture) => each(f.customers, c => get("/api/v1/cart", bearer(c.token))),
	// The two lines each cart was given, with changing quantities: carts keep two lines.
	addToCart: (f: Fixture) =>
		[0, 1, 2].flatMap(q =>
			[0, 1].flatMap(line =>
				each(f.customers, (c, i) =>
					send(
						"PUT",
						`/api/v1/cart/items/${f.products[(i + line) % f.products.length]}`,
						{ quantity: 1 + q },
						bearer(c.token),
					),
				),
			),
		),
	quote: (f: Fixture) =>
		each(f.products, (_, n) =>
			send(
				"POST",
				"/api/v1/quote",
				{
					items: Array.from({ length: 5 }, (_, i) => ({
						productId: f.products[(n + i) % f.products.length],
						quantity: 1 + i,
					})),
					country: "DE",
					discountCode: "WELCOME10",
				},
				JSON_HEADERS,
			),
		),
	/** One line each, a new Idempotency-Key each (orders.create refuses a key reused for another body). */
	checkout: (f: Fixture) =>
		each(f.customers, (c, i) => ({
			...send(
				"POST",
				"/api/v1/orders",
				{
					items: [{ productId: f.products[i % f.products.length], quantity: 1 }],
					paymentMethod: "pm_card_visa",
				},
				bearer(c.token),
			),
			setupRequest: (req: autocannon.Request) => ({
				...req,
				headers: { ...req.headers, "Idempotency-Key": `bench-${f.runId}-${f.keys++}` },
			}),
		})),
	login: (f: Fixture) =>
		each(f.customers, ({ email, password }) =>
			send("POST", "/api/v1/auth/login", { email, password }, JSON_HEADERS),
		),
};

/**
 * A weighted mix as one sequence of MIX_LENGTH requests, each part's share of it by weight, the parts
 * interleaved in a fixed pseudo-random order; each part's requests are taken in turn.
 */
const MIX_LENGTH = 400;
function mix(parts: Array<[number, autocannon.Request[]]>): autocannon.Request[] {
	const total = parts.reduce((sum, [weight]) => sum + weight, 0);
	const slots = parts.flatMap(([weight], part) => Array(Math.round((weight / total) * MIX_LENGTH)).fill(part));
	let seed = 7;
	for (let i = slots.length - 1; i > 0; i--) {
		seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
		const j = seed % (i + 1);
		[slots[i], slots[j]] = [slots[j], slots[i]];
	}
	const taken = parts.map(() => 0);
	return slots.map(part => {
		const list = parts[part][1];
		return list[taken[part]++ % list.length];
	});
}

const only = (list: autocannon.Request[], share: Partial<Omit<RequestList, "requests">> = {}): RequestList => ({
	requests: list,
	views: share.views ?? 0,
	orders: share.orders ?? 0,
});

export const WORKLOADS: Workload[] = [
	{ key: "product", name: "GET product by id", requests: f => only(requests.product(f), { views: 1 }) },
	{ key: "search", name: "product search (q=mug, 20 rows)", requests: () => only(requests.search()) },
	{ key: "page", name: "products page (by price, 20 rows)", requests: () => only(requests.page()) },
	{ key: "cart", name: "cart view (2 lines)", requests: f => only(requests.cart(f)) },
	{ key: "add", name: "add to cart", requests: f => only(requests.addToCart(f)) },
	{
		key: "checkout",
		name: "checkout (one line, pm_card_visa)",
		requests: f => only(requests.checkout(f), { orders: 1 }),
	},
	{
		key: "mix",
		name: "shop mix",
		// browse 56% (product 36, page 10, search 10), cart view 13%, add to cart 13%, quote 10%, checkout 5%, login 3%
		requests: f =>
			only(
				mix([
					[36, requests.product(f)],
					[10, requests.page()],
					[10, requests.search()],
					[13, requests.cart(f)],
					[13, requests.addToCart(f)],
					[10, requests.quote(f)],
					[5, requests.checkout(f)],
					[3, requests.login(f)],
				]),
				{ views: 0.36, orders: 0.05 },
			),
	},
];

/** The quote workload of the scaling measurement: bound by the stateless pricing service. */
export const QUOTE_WORKLOAD: Workload = {
	key: "quote",
	name: "quote (POST /quote, 5 lines)",
	requests: f => only(requests.quote(f)),
};
