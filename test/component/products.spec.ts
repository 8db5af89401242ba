import type { ServiceBroker } from "moleculer";
import ProductsService from "../../services/products/products.service";
import { DEMO_CATALOG } from "../../services/products/demo-catalog";
import { channelDrained, outboxRelayed } from "../helpers/quiescence";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
const admin = { meta: { user: { id: "admin", role: "admin" } } };

beforeAll(async () => {
	broker = await startBroker([ProductsService]);
});
afterAll(() => broker.stop());

async function product(sku: string, stock: number, price = 500) {
	return broker.call<any, any>(
		"products.create",
		{ sku, name: `Product ${sku}`, price, category: "unit", stock },
		admin,
	);
}
const stockOf = async (id: string) => (await broker.call<any, any>("products.get", { id })).stock;

describe("catalog", () => {
	it("seeds the demo catalog into an empty collection", async () => {
		const { total } = await broker.call<any, any>("products.list", { pageSize: 100 });
		expect(total).toBe(DEMO_CATALOG.length);
	});

	it("filters by text, category and price, in integer cents", async () => {
		const res = await broker.call<any, any>("products.list", { q: "(", category: "kitchen" });
		expect(res.total).toBe(0); // regex characters are searched literally
		const apparel = await broker.call<any, any>("products.list", {
			category: "APPAREL",
			minPrice: "2000",
			maxPrice: "6000",
			sort: "price",
		});
		expect(apparel.rows.map((p: any) => p.sku)).toEqual(["TEE-001", "HOOD-001"]);
		expect(apparel.rows.every((p: any) => Number.isInteger(p.price))).toBe(true);
	});

	it("finds the products whose name, description or SKU contains the text, whatever the case, as a scan would", async () => {
		const add = (sku: string, name: string, description: string) =>
			broker.call<any, any>(
				"products.create",
				{ sku, name, description, price: 700, category: "search", stock: 1 },
				admin,
			);
		const made = [
			await add("SRCH-PLAIN", "Smuggler's Flask", "Holds 200 ml."),
			await add("SRCH-DESC", "Travel Cup", "Fits every SMUGGLER's pocket."),
			await add("QZX-SRCH-7", "Plain Box", "Cardboard."),
			await add("SRCH-UNICODE", "Café Crème Tin", "Ünïcödé text, ßtraße."),
		];
		const skus = async (q: string) =>
			(await broker.call<any, any>("products.list", { q, category: "search", pageSize: 100 })).rows
				.map((p: any) => p.sku)
				.sort();
		expect(await skus("muggler")).toEqual(["SRCH-DESC", "SRCH-PLAIN"]); // inside a word, in a description
		expect(await skus("MUGGLER'S")).toEqual(["SRCH-DESC", "SRCH-PLAIN"]);
		expect(await skus("qzx-srch")).toEqual(["QZX-SRCH-7"]);
		expect(await skus("x-s")).toEqual(["QZX-SRCH-7"]);
		expect(await skus("ml")).toEqual(["SRCH-PLAIN"]); // shorter than the index's keys
		expect(await skus("afé cr")).toEqual(["SRCH-UNICODE"]); // beyond ASCII
		expect(await skus("ßtra")).toEqual(["SRCH-UNICODE"]);
		expect(await skus("smuggler flask")).toEqual([]);
		expect(await skus("200 ml.")).toEqual(["SRCH-PLAIN"]);

		// A renamed product is found by its new name only.
		await broker.call("products.update", { id: made[2].id, name: "Quartz Lamp" }, admin);
		expect(await skus("plain box")).toEqual([]);
		expect(await skus("quartz l")).toEqual(["QZX-SRCH-7"]);
		expect(await skus("qzx-srch")).toEqual(["QZX-SRCH-7"]);
		expect((await broker.call<any, any>("products.get", { id: made[2].id })).searchGrams).toBeUndefined();
	});

	it("gives products stored without search keys theirs when it starts", async () => {
		const service = broker.getLocalService("products") as any;
		await service.adapter.insert({
			sku: "SRCH-OLD",
			name: "Legacy Lantern",
			description: "",
			price: 100,
			currency: "USD",
			category: "search-old",
			stock: 1,
			createdAt: new Date(),
			updatedAt: new Date(),
		});
		await service.upgradeDB();
		const { rows } = await broker.call<any, any>("products.list", { q: "lantern", category: "search-old" });
		expect(rows.map((p: any) => p.sku)).toEqual(["SRCH-OLD"]);
	});

	it("pages through a sort without repeating or missing a product, ties included", async () => {
		const prices = [300, 100, 200, 100, 300, 100, 200, 400, 100, 300, 250];
		for (const [i, price] of prices.entries()) {
			await broker.call(
				"products.create",
				{ sku: `PAGE-${i}`, name: `Page ${i % 4}`, price, category: "paging", stock: 1 },
				admin,
			);
		}
		// With a filter the store takes candidates from another index for; with none; with bounds on the sorted field.
		for (const filter of [{ category: "paging" }, {}, { minPrice: 150 }]) {
			const all = (await broker.call<any, any>("products.list", { ...filter, pageSize: 100 })).rows;
			for (const sort of ["price", "-price", "name", "-name", "createdAt", "-createdAt"]) {
				const seen: any[] = [];
				for (let page = 1; page <= Math.ceil(all.length / 3); page++) {
					const res = await broker.call<any, any>("products.list", { ...filter, sort, page, pageSize: 3 });
					expect(res.total).toBe(all.length);
					seen.push(...res.rows);
				}
				expect(seen.map(p => p.id).sort()).toEqual(all.map((p: any) => p.id).sort());
				const field = sort.replace("-", "");
				const values = seen.map(p => (field === "createdAt" ? new Date(p.createdAt).getTime() : p[field]));
				const ordered = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
				expect(values).toEqual(sort.startsWith("-") ? ordered.reverse() : ordered);
			}
		}
		// Past the last page: no rows, the same total.
		const past = await broker.call<any, any>("products.list", { category: "paging", page: 9, pageSize: 3 });
		expect([past.rows, past.total]).toEqual([[], prices.length]);
	});

	it("keeps SKUs unique", async () => {
		await product("UNIQUE-1", 1);
		await expect(product("unique-1", 1)).rejects.toMatchObject({ code: 409, type: "SKU_TAKEN" });
		const sku = await product("UNIQUE-2", 1);
		await expect(broker.call("products.update", { id: sku.id, sku: "UNIQUE-1" }, admin)).rejects.toMatchObject({
			code: 409,
		});
	});

	it("serves fresh data after a change, though reads are cached", async () => {
		const p = await product("CACHE-1", 5);
		expect(await stockOf(p.id)).toBe(5);
		await broker.call("products.update", { id: p.id, stock: 9 }, admin);
		expect(await stockOf(p.id)).toBe(9);
		await broker.call("products.reserveStock", {
			orderId: "cacheOrder",
			items: [{ productId: p.id, quantity: 4 }],
		});
		expect(await stockOf(p.id)).toBe(5);
	});

	it("answers 404 for unknown and malformed ids", async () => {
		await expect(broker.call("products.get", { id: "nope" })).rejects.toMatchObject({ code: 404 });
		await expect(broker.call("products.remove", { id: "nope" }, admin)).rejects.toMatchObject({ code: 404 });
		expect(await broker.call("products.getMany", { ids: ["nope"] })).toEqual([]);
	});
});

describe("reserveStock / releaseStock", () => {
	let orders = 0;
	const reserve = (items: object[], orderId = `order${++orders}`) =>
		broker.call<any, any>("products.reserveStock", { orderId, items });
	const release = (items: object[], orderId: string) =>
		broker.call<any, any>("products.releaseStock", { orderId, items });

	it("takes every line or none", async () => {
		const a = await product("RES-A", 5);
		const b = await product("RES-B", 1);
		await expect(
			reserve([
				{ productId: a.id, quantity: 2 },
				{ productId: b.id, quantity: 2 },
			]),
		).rejects.toMatchObject({
			code: 409,
			type: "OUT_OF_STOCK",
			data: { items: [{ productId: b.id, quantity: 2, available: 1 }] },
		});
		expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([5, 1]);

		await reserve(
			[
				{ productId: a.id, quantity: 2 },
				{ productId: b.id, quantity: 1 },
			],
			"orderAB",
		);
		expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([3, 0]);
		await release(
			[
				{ productId: a.id, quantity: 2 },
				{ productId: b.id, quantity: 1 },
			],
			"orderAB",
		);
		expect([await stockOf(a.id), await stockOf(b.id)]).toEqual([5, 1]);
	});

	it("is idempotent per order: a repeated reserve or release moves nothing", async () => {
		const p = await product("RES-IDEM", 10);
		const lines = [{ productId: p.id, quantity: 3 }];
		await reserve(lines, "orderTwice");
		await reserve(lines, "orderTwice");
		expect(await stockOf(p.id)).toBe(7);
		expect((await release(lines, "orderTwice")).items).toEqual(lines);
		expect((await release(lines, "orderTwice")).items).toEqual([]);
		expect((await release(lines, "neverReserved")).items).toEqual([]);
		expect(await stockOf(p.id)).toBe(10);
	});

	it("keeps the reservations out of the product's public fields", async () => {
		const p = await product("RES-HIDDEN", 10);
		await reserve([{ productId: p.id, quantity: 1 }]);
		expect(Object.keys(await broker.call("products.get", { id: p.id }))).not.toContain("reservations");
	});

	it("adds up repeated lines of one product before checking", async () => {
		const p = await product("RES-C", 3);
		await expect(
			reserve([
				{ productId: p.id, quantity: 2 },
				{ productId: p.id, quantity: 2 },
			]),
		).rejects.toMatchObject({ code: 409 });
		expect(await stockOf(p.id)).toBe(3);
	});

	it("treats an unknown product as out of stock", async () => {
		const p = await product("RES-D", 3);
		await expect(
			reserve([
				{ productId: p.id, quantity: 1 },
				{ productId: "missing0000000000", quantity: 1 },
			]),
		).rejects.toMatchObject({ code: 409, data: { items: [{ productId: "missing0000000000", available: 0 }] } });
		expect(await stockOf(p.id)).toBe(3);
	});

	it("never goes below zero under concurrent reservations", async () => {
		const p = await product("RES-E", 25);
		const results = await Promise.allSettled(
			Array.from({ length: 60 }, () => reserve([{ productId: p.id, quantity: 1 }])),
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(25);
		expect(await stockOf(p.id)).toBe(0);
	});

	it("sells to one of two orders naming the last units in opposite order, not to neither", async () => {
		for (let round = 0; round < 10; round++) {
			const x = await product(`CROSS-X${round}`, 1);
			const y = await product(`CROSS-Y${round}`, 1);
			const results = await Promise.allSettled([
				reserve([
					{ productId: x.id, quantity: 1 },
					{ productId: y.id, quantity: 1 },
				]),
				reserve([
					{ productId: y.id, quantity: 1 },
					{ productId: x.id, quantity: 1 },
				]),
			]);
			expect(results.map(r => r.status).sort()).toEqual(["fulfilled", "rejected"]);
			expect([await stockOf(x.id), await stockOf(y.id)]).toEqual([0, 0]);
		}
	});
});

describe("commitStock / restockOrder and stock.low", () => {
	const lowStock: any[] = [];
	beforeAll(() => {
		broker.createService({
			name: "watcher",
			channels: { "stock.low": { handler: (event: any) => void lowStock.push(event) } },
		} as any);
		return broker.waitForServices("watcher");
	});
	const reserve = (orderId: string, productId: string, quantity: number) =>
		broker.call("products.reserveStock", { orderId, items: [{ productId, quantity }] });
	const eventsOf = (productId: string) => lowStock.filter(e => e.data.productId === productId);

	it("commits a paid order's hold, and gives a cancelled order's units back once", async () => {
		const p = await product("COMMIT-1", 10);
		await reserve("paid1", p.id, 4);
		await broker.call("products.commitStock", { orderId: "paid1", items: [{ productId: p.id, quantity: 4 }] });
		await broker.call("products.releaseStock", { orderId: "paid1", items: [{ productId: p.id, quantity: 4 }] });
		expect(await stockOf(p.id)).toBe(6); // committed: a stray release gives nothing back
		for (let i = 0; i < 2; i++)
			await broker.call("products.restockOrder", { orderId: "paid1", items: [{ productId: p.id, quantity: 4 }] });
		expect(await stockOf(p.id)).toBe(10);
	});

	it("keeps a restock marker for a week: the product's next restock drops older ones, not newer ones", async () => {
		const p = await product("RESTOCK-AGE", 10);
		const restock = (orderId: string) =>
			broker.call("products.restockOrder", { orderId, items: [{ productId: p.id, quantity: 1 }] });
		const products = broker.getLocalService("products") as any;
		const stored = async () => (await products.adapter.findById(products.decodeID(p.id))).restocked;
		await restock("old1");
		await restock("recent1");
		const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3_600_000);
		const sixDaysAgo = new Date(Date.now() - 6 * 24 * 3_600_000);
		await products.adapter.updateMany(
			{ _id: products.decodeID(p.id) },
			{ $set: { "restocked.old1.at": eightDaysAgo, "restocked.recent1.at": sixDaysAgo } },
		);
		await restock("new1");
		expect(Object.keys(await stored()).sort()).toEqual(["new1", "recent1"]);
		await restock("recent1"); // still remembered: nothing comes back twice
		expect(await stockOf(p.id)).toBe(13);
	});

	it("publishes the events a crash left in an outbox once each, from the periodic pass", async () => {
		const p = await product("OUTBOX-LEFT", 50);
		const products = broker.getLocalService("products") as any;
		const _id = products.decodeID(p.id);
		const left = [1, 2].map(stock => ({
			id: `left-${p.id}-${stock}`,
			type: "stock.low",
			version: 1,
			occurredAt: new Date().toISOString(),
			data: { productId: p.id, sku: p.sku, name: p.name, stock, threshold: 5 },
		}));
		// Written with the state change, never relayed (the node died right after the write).
		await products.adapter.updateMany({ _id }, { $push: { outbox: { $each: left } } });
		await products.relayOutbox();
		await channelDrained(broker, "stock.low", () => lowStock);
		expect(eventsOf(p.id).map(event => event.id)).toEqual(left.map(event => event.id));
		expect(products.plain(await products.adapter.findById(_id)).outbox ?? []).toHaveLength(0);
	});

	it("publishes stock.low once when stock crosses the threshold, also when two orders cross it together", async () => {
		const products = await Promise.all([1, 2, 3, 4, 5].map(i => product(`LOW-${i}`, 10)));
		// Threshold 5: from 10, two orders of 3 at once end at 4; exactly one of them crossed.
		await Promise.all(products.flatMap(p => [reserve(`a-${p.id}`, p.id, 3), reserve(`b-${p.id}`, p.id, 3)]));
		await reserve(`c-${products[0].id}`, products[0].id, 1); // already low: no second event
		// Every reservation has answered; once their events are relayed and delivered, no other can come.
		await outboxRelayed(broker, "products");
		await channelDrained(broker, "stock.low", () => lowStock);
		for (const p of products) {
			expect(eventsOf(p.id)).toEqual([
				expect.objectContaining({
					type: "stock.low",
					version: 1,
					data: expect.objectContaining({ sku: p.sku, stock: 4, threshold: 5 }),
				}),
			]);
		}
	});
});
