/** Many simultaneous checkouts through the gateway: stock is never oversold, keys never double-order. */
import { barrier, holdCalls, sendEach } from "../helpers/barrier";
import { startShop, type Shop } from "../helpers/shop";

let shop: Shop;
let admin: string;

beforeAll(async () => {
	shop = await startShop();
	admin = await shop.adminToken();
});
afterAll(() => shop.stop());

async function newProduct(sku: string, stock: number) {
	const res = await shop.request("POST", "/api/v1/products", {
		token: admin,
		body: { sku, name: sku, price: 1000, category: "test", stock },
	});
	expect(res.status).toBe(201);
	return res.body;
}

it("sells exactly the stock to many simultaneous checkouts", async () => {
	const STOCK = 10;
	const BUYERS = 40;
	const scarce = await newProduct("SCARCE-1", STOCK);
	const plenty = await newProduct("PLENTY-1", 10_000);
	const buyers = await Promise.all(Array.from({ length: BUYERS }, () => shop.signUp()));

	// The race is forced: every checkout waits just before its conditional update of the scarce product's
	// stock until all of them have read that stock, so all 40 read 10 units left before any writes, and only
	// the update's own condition can keep them from taking 40. They come in one by one up to a first wait,
	// once their orders are stored (so none times out on the way in on a busy machine), and from there run
	// side by side: the wait at the stock, inside the 3 s reservation call, is only that short way long.
	const ordersService = shop.broker.getLocalService("orders") as any;
	const productsService = shop.broker.getLocalService("products") as any;
	const stored = barrier(BUYERS);
	const read = barrier(BUYERS);
	const restore = [
		holdCalls(
			ordersService.adapter,
			"insert",
			stored,
			(doc: any) => doc.items?.some((item: any) => item.productId === scarce.id),
			{ after: true },
		),
		holdCalls(productsService, "updateWithEvents", read, (filter: any) => String(filter._id) === scarce.id),
	];
	let results;
	try {
		results = await sendEach(stored, index =>
			shop.request("POST", "/api/v1/orders", {
				token: buyers[index].token,
				body: {
					paymentMethod: "pm_card_visa",
					items: [
						{ productId: plenty.id, quantity: 1 },
						{ productId: scarce.id, quantity: 1 },
					],
				},
			}),
		);
	} finally {
		restore.forEach(put => put());
	}

	expect([stored.opened, read.opened]).toEqual([true, true]);
	const statuses = results.map(r => r.status);
	expect(statuses.filter(s => s === 201)).toHaveLength(STOCK);
	expect(statuses.filter(s => s === 409)).toHaveLength(BUYERS - STOCK);
	expect((await shop.request("GET", `/api/v1/products/${scarce.id}`)).body.stock).toBe(0);
	// The refused checkouts gave back the other line too.
	expect((await shop.request("GET", `/api/v1/products/${plenty.id}`)).body.stock).toBe(10_000 - STOCK);
	const orders = await Promise.all(buyers.map(({ token }) => shop.request("GET", "/api/v1/orders", { token })));
	expect(orders.reduce((sum, r) => sum + r.body.total, 0)).toBe(STOCK);
});

it("creates one order for simultaneous repeats with the same Idempotency-Key", async () => {
	const product = await newProduct("IDEM-1", 100);
	const { token, user } = await shop.signUp();
	const headers = { "idempotency-key": "checkout-42" };
	const body = { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 3 }] };

	// The race is forced: every repeat waits just before it stores its order until all 12 have looked the
	// key up and found no order, so all 12 try to store one under the key at once; only the unique index on
	// the key can let just one through. (They come in one by one up to there: none times out on the way in.)
	const orders = shop.broker.getLocalService("orders") as any;
	const claims = barrier(12);
	const restore = holdCalls(
		orders.adapter,
		"insert",
		claims,
		(doc: any) => doc.idempotencyKey === `${user.id}:checkout-42`,
	);
	let results;
	try {
		results = await sendEach(claims, () => shop.request("POST", "/api/v1/orders", { token, headers, body }));
	} finally {
		restore();
	}

	expect(claims.opened).toBe(true);
	expect(results.map(r => r.status)).toEqual(Array(12).fill(201));
	expect(new Set(results.map(r => r.body.id)).size).toBe(1);
	expect(results.filter(r => r.headers.get("idempotent-replayed") === "true")).toHaveLength(11);
	expect((await shop.request("GET", "/api/v1/orders", { token })).body.total).toBe(1);
	expect((await shop.request("GET", `/api/v1/products/${product.id}`)).body.stock).toBe(97);

	// The same key from another user is another order.
	const other = await shop.signUp();
	const theirs = await shop.request("POST", "/api/v1/orders", { token: other.token, headers, body });
	expect(theirs.status).toBe(201);
	expect(theirs.body.id).not.toBe(results[0].body.id);
});

it("answers a repeated cart checkout with the first order after the cart was emptied", async () => {
	const product = await newProduct("IDEM-2", 100);
	const { token } = await shop.signUp();
	await shop.request("PUT", `/api/v1/cart/items/${product.id}`, { token, body: { quantity: 2 } });
	const headers = { "idempotency-key": "cart-checkout" };
	const first = await shop.request("POST", "/api/v1/orders", {
		token,
		headers,
		body: { paymentMethod: "pm_card_visa", fromCart: true },
	});
	const again = await shop.request("POST", "/api/v1/orders", {
		token,
		headers,
		body: { paymentMethod: "pm_card_visa", fromCart: true },
	});
	expect(first.status).toBe(201);
	expect(again.body).toEqual(first.body);
	expect((await shop.request("GET", `/api/v1/products/${product.id}`)).body.stock).toBe(98);
});
