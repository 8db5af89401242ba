/**
 * The role is the account's, not the token's (README "Auth"): the gateway resolves every Bearer
 * token through users.resolveToken, which looks the account up (a cached lookup, cleared when the
 * account changes) and puts `{ id, role }` of the account on ctx.meta.user. So a token keeps
 * working after its account's role changed, with the new role.
 *
 * moleshop has no action that changes a role: `setRole` changes it the way an admin tool working
 * through the users service would, in the store and then through moleculer-db's entityChanged,
 * which every write of the service ends with (it cleans the service's cache on every node).
 */
import jwt from "jsonwebtoken";
import { startShop, type Shop } from "../helpers/shop";

let shop: Shop;
beforeAll(async () => {
	shop = await startShop();
});
afterAll(() => shop.stop());

async function setRole(id: string, role: "admin" | "customer") {
	const users = shop.broker.getLocalService("users") as any;
	const doc = await users.adapter.updateById(users.decodeID(id), { $set: { role, updatedAt: new Date() } });
	await users.entityChanged("updated", doc, null);
}

const listUsers = (token: string) => shop.request("GET", "/api/v1/users", { token });
const createProduct = (token: string) =>
	shop.request("POST", "/api/v1/products", {
		token,
		body: { sku: `ROLE-${Date.now()}`, name: "Role test", price: 100, category: "test" },
	});

it("refuses admin actions to a signed-in admin demoted to customer, whose token still says admin", async () => {
	const { user, email, password } = await shop.signUp("Soon demoted");
	await setRole(user.id, "admin");
	const { token } = (await shop.request("POST", "/api/v1/auth/login", { body: { email, password } })).body;
	expect(jwt.decode(token)).toMatchObject({ sub: user.id, role: "admin" });
	expect((await listUsers(token)).status).toBe(200); // an admin: the account is looked up, and cached

	await setRole(user.id, "customer");
	const refused = await listUsers(token);
	expect(refused.status).toBe(403);
	expect(refused.body).toMatchObject({ code: 403, type: "FORBIDDEN" });
	expect((await createProduct(token)).status).toBe(403);
	// Still signed in, as what the account now is.
	expect(await shop.request("GET", "/api/v1/users/me", { token })).toMatchObject({
		status: 200,
		body: { id: user.id, role: "customer" },
	});
});

it("refuses admin actions to a customer whose token, signed with the shop's secret, says admin", async () => {
	const { user } = await shop.signUp("Claims admin");
	const token = jwt.sign({ role: "admin" }, "test-secret", { subject: user.id, expiresIn: "1h" }); // env.ts's JWT_SECRET
	expect((await listUsers(token)).status).toBe(403);
	expect((await createProduct(token)).status).toBe(403);
});

it("gives admin access to a customer promoted while signed in, with the token that says customer", async () => {
	const { user, token } = await shop.signUp("Soon promoted");
	expect((await listUsers(token)).status).toBe(403); // a customer: looked up, and cached
	await setRole(user.id, "admin");
	expect(jwt.decode(token)).toMatchObject({ role: "customer" });
	expect((await listUsers(token)).status).toBe(200);
});
