/**
 * The MongoDB path (moleculer-db-adapter-mongoose). Runs whenever MONGO_URI is
 * set — then the whole suite runs on MongoDB too — and is skipped with a
 * notice otherwise, since no MongoDB server can be installed on every machine.
 */
import mongoose from "mongoose";
import { config } from "../../lib/config";
import { startShop, type Shop } from "../helpers/shop";

// Without MONGO_URI, test/helpers/global-setup.ts prints the notice that these are skipped.
const describeWithMongo = config.mongoUri ? describe : describe.skip;

describeWithMongo("MongoDB store", () => {
	let shop: Shop;
	beforeAll(async () => {
		shop = await startShop();
	});
	afterAll(() => shop?.stop());

	it("keeps each service's entities in its own collection, with string ids at the edge", async () => {
		const { token, user } = await shop.signUp();
		const product = (await shop.request("GET", "/api/v1/products?q=mug")).body.rows[0];
		const order = await shop.request("POST", "/api/v1/orders", { token, body: { paymentMethod: "pm_card_visa", items: [{ productId: product.id, quantity: 1 }] } });
		expect(order.status).toBe(201);
		expect(typeof order.body.id).toBe("string");

		const db = mongoose.connection.db!;
		const storedUser = await db.collection("users").findOne({ _id: new mongoose.Types.ObjectId(user.id) });
		expect(storedUser?.passwordHash).toMatch(/^\$argon2id\$/);
		const storedOrder = await db.collection("orders").findOne({ _id: new mongoose.Types.ObjectId(order.body.id) });
		expect(storedOrder).toMatchObject({ userId: user.id, total: order.body.total, status: "paid", invoiceNumber: order.body.invoiceNumber });
		const storedProduct = await db.collection("products").findOne({ sku: product.sku });
		expect(storedProduct?.stock).toBe(product.stock - 1);
		expect(storedProduct?.reservations?.[order.body.id]).toBeUndefined(); // committed
		expect(await db.collection("payments").findOne({ orderId: order.body.id })).toMatchObject({ kind: "charge", status: "succeeded", amount: order.body.total });
		expect(await db.collection("invoices").findOne({ _id: "sequence:invoice" } as object)).toMatchObject({ seq: expect.any(Number) });
		expect(await db.collection("invoices").findOne({ orderId: order.body.id })).toMatchObject({ number: order.body.invoiceNumber });
	});

	it("enforces the unique indexes in MongoDB", async () => {
		const db = mongoose.connection.db!;
		const unique = async (collection: string) => (await db.collection(collection).indexes()).filter(i => i.unique).map(i => Object.keys(i.key)[0]);
		expect(await unique("users")).toContain("email");
		expect(await unique("products")).toContain("sku");
		expect(await unique("carts")).toContain("userId");
		expect(await unique("orders")).toContain("idempotencyKey");
		expect(await unique("payments")).toContain("key");
		expect(await unique("invoices")).toEqual(expect.arrayContaining(["orderId", "number"]));
		expect(await unique("provider_charges")).toContain("key");
		expect(await unique("notifications")).toContain("key");
		expect(await unique("analytics")).toContain("eventId");
	});

	it("answers 404, not 500, for ids that are not ObjectIds", async () => {
		const { token } = await shop.signUp();
		for (const path of ["/api/v1/products/not-an-object-id", "/api/v1/products/0123456789abcdef01234567"]) {
			expect((await shop.request("GET", path)).status).toBe(404);
		}
		expect((await shop.request("GET", "/api/v1/orders/zzzz", { token })).status).toBe(404);
	});
});
