/**
 * The product pages beside the gateway (services/api/catalog.service.ts): answered from the
 * node's cacher, dropped on every change of products, views counted and published as totals.
 */
import { Context, type ServiceBroker } from "moleculer";
import CatalogService from "../../services/api/catalog.service";
import ProductsService from "../../services/products/products.service";
import { Faults } from "../helpers/faults";
import { TestCluster } from "../helpers/brokers";
import { waitFor } from "../helpers/process";

const cluster = new TestCluster(null);
const faults = new Faults();
let broker: ServiceBroker;
const admin = { meta: { user: { id: "admin", role: "admin" } } };

beforeAll(async () => {
	broker = await cluster.start("catalog", [ProductsService, CatalogService], faults);
});
afterAll(() => cluster.stop());
beforeEach(() => faults.reset());

const catalog = () => broker.getLocalService("catalog") as any;
let skus = 0;
const product = (stock = 5) =>
	broker.call<any, any>(
		"products.create",
		{ sku: `CAT-${++skus}`, name: `Catalog ${skus}`, price: 700, category: "catalog", stock },
		admin,
	);
const view = (id: string) => broker.call<any, any>("catalog.view", { id });

describe("product pages", () => {
	it("are read from products once, then from the cacher", async () => {
		const { id } = await product();
		faults.reset();
		expect(await view(id)).toMatchObject({ id, price: 700, stock: 5 });
		expect(await view(id)).toMatchObject({ id, price: 700, stock: 5 });
		expect(faults.runs("products.get")).toBe(1);
	});

	it("show every change of the product at once: its fields and its stock", async () => {
		const { id } = await product();
		await view(id);
		await broker.call("products.update", { id, price: 750 }, admin);
		expect(await view(id)).toMatchObject({ price: 750 });
		await broker.call("products.reserveStock", { orderId: "cat-order-1", items: [{ productId: id, quantity: 2 }] });
		expect(await view(id)).toMatchObject({ stock: 3 });
		await broker.call("products.remove", { id }, admin);
		await expect(view(id)).rejects.toMatchObject({ code: 404, type: "NOT_FOUND" });
	});

	it("of other products stay cached when a checkout moves one product's stock, and catalog pages show it", async () => {
		const [moved, other] = [await product(), await product()];
		await view(moved.id);
		await view(other.id);
		const page = () => broker.call<any, any>("catalog.list", { category: "catalog", pageSize: 100 });
		await page();
		faults.reset();
		await broker.call("products.reserveStock", {
			orderId: "cat-order-2",
			items: [{ productId: moved.id, quantity: 1 }],
		});
		expect(await view(moved.id)).toMatchObject({ stock: 4 });
		expect(await view(other.id)).toMatchObject({ stock: 5 });
		expect(faults.runs("products.get")).toBe(1); // the moved product only
		expect((await page()).rows.find((row: any) => row.id === moved.id)).toMatchObject({ stock: 4 });
		await broker.call("products.releaseStock", {
			orderId: "cat-order-2",
			items: [{ productId: moved.id, quantity: 1 }],
		});
		expect(await view(moved.id)).toMatchObject({ stock: 5 });
		expect(faults.runs("products.get")).toBe(2);
	});

	it("do not keep a read that was under way when the product changed", async () => {
		const { id } = await product();
		const before = await broker.call<any, any>("products.get", { id });
		let answer!: (product: unknown) => void;
		// The read of products.get answers only when let: the product as it was before the change.
		const call = jest.spyOn(Context.prototype, "call").mockImplementationOnce(function (this: Context) {
			return new Promise(resolve => (answer = resolve)) as any;
		});
		const underWay = view(id);
		await waitFor(async () => !!answer, 5_000, "the read to be under way");
		call.mockRestore();
		await broker.call("products.update", { id, price: 999 }, admin);
		answer(before);
		expect(await underWay).toMatchObject({ price: 700 }); // it began before the change
		expect(await view(id)).toMatchObject({ price: 999 }); // and was not kept
	});

	it("refuse an unknown or malformed id with a 404 or a 422, and count nothing", async () => {
		await expect(view("nope")).rejects.toMatchObject({ code: 404 });
		await expect(broker.call("catalog.view", { id: "" })).rejects.toMatchObject({ code: 422 });
		expect(
			catalog()
				.views.changed()
				.filter((c: any) => c.productId === "nope"),
		).toEqual([]);
	});
});

describe("catalog pages", () => {
	const list = (params: object) => broker.call<any, any>("catalog.list", { ...params });

	it("are read from products once per query, then from the cacher", async () => {
		faults.reset();
		const first = await list({ category: "catalog", sort: "-price" });
		expect(await list({ category: "catalog", sort: "-price" })).toEqual(first);
		expect(faults.runs("products.list")).toBe(1);
		await list({ category: "catalog", sort: "price" }); // another query, another page
		expect(faults.runs("products.list")).toBe(2);
	});

	it("show a change of any product at once", async () => {
		const before = (await list({ category: "catalog", pageSize: 100 })).total;
		const { id } = await product();
		expect((await list({ category: "catalog", pageSize: 100 })).total).toBe(before + 1);
		await broker.call("products.update", { id, name: "Renamed" }, admin);
		const { rows } = await list({ category: "catalog", pageSize: 100 });
		expect(rows.find((row: any) => row.id === id)).toMatchObject({ name: "Renamed" });
	});

	it("refuse what products.list refuses, with its 422, and keep nothing", async () => {
		await expect(list({ pageSize: 1000 })).rejects.toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		await expect(list({ sort: "stock" })).rejects.toMatchObject({ code: 422 });
		const kept = (await broker.cacher!.getCacheKeys()).map((entry: any) => entry.key);
		expect(kept.filter((key: string) => key.includes("1000") || key.includes("stock"))).toEqual([]);
	});
});

describe("product views", () => {
	const published: any[] = [];
	let failNext = false;
	let send: jest.SpyInstance;
	beforeAll(() => {
		clearInterval(catalog().viewsTimer); // the test publishes when it wants to, not every VIEW_FLUSH_MS
		send = jest.spyOn(broker, "sendToChannel").mockImplementation(async (channel: string, event: any) => {
			if (channel !== "product.views") return;
			if (failNext) {
				failNext = false;
				throw new Error("NATS is down");
			}
			published.push(event);
		});
	});
	afterAll(() => send.mockRestore());
	beforeEach(async () => {
		await catalog().publishViews(); // what earlier tests viewed
		published.length = 0;
	});

	it("are counted in memory and published as one event of running totals per interval, never one per view", async () => {
		const [a, b] = [await product(), await product()];
		const calls = send.mock.calls.length;
		for (const id of [a.id, a.id, b.id, a.id]) expect((await view(id)).id).toBe(id);
		expect(send.mock.calls.length).toBe(calls); // a view publishes nothing by itself
		await catalog().publishViews();
		const today = new Date().toISOString().slice(0, 10);
		expect(published).toEqual([
			expect.objectContaining({
				type: "product.views",
				data: {
					counter: catalog().views.id,
					counts: [
						{ productId: a.id, day: today, views: 3 },
						{ productId: b.id, day: today, views: 1 },
					],
				},
			}),
		]);
		await catalog().publishViews();
		expect(published).toHaveLength(1); // nothing changed: nothing to publish
		await view(b.id);
		await catalog().publishViews();
		expect(published[1].data.counts).toEqual([{ productId: b.id, day: today, views: 2 }]);
	});

	it("are published again after a failed publish", async () => {
		const { id } = await product();
		await view(id);
		failNext = true;
		await catalog().publishViews(); // logged, kept for the next one
		expect(published).toEqual([]);
		await view(id);
		await catalog().publishViews();
		expect(published.map(event => event.data.counts)).toEqual([
			[expect.objectContaining({ productId: id, views: 2 })],
		]);
	});

	it("are published before the node stops", async () => {
		const other = new TestCluster(null);
		const node = await other.start("catalog-stopping", [ProductsService, CatalogService]);
		const sent = jest.spyOn(node, "sendToChannel").mockResolvedValue(undefined);
		const [{ id }] = (await node.call<any, any>("products.list", { pageSize: 1 })).rows;
		await node.call("catalog.view", { id });
		await other.stop();
		expect(sent).toHaveBeenCalledWith(
			"product.views",
			expect.objectContaining({
				data: expect.objectContaining({ counts: [expect.objectContaining({ productId: id, views: 1 })] }),
			}),
			expect.anything(),
		);
	});
});
