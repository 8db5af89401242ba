import type { ServiceBroker } from "moleculer";
import jwt from "jsonwebtoken";
import UsersService from "../../services/users/users.service";
import { startBroker } from "../helpers/shop";

let broker: ServiceBroker;
const collection = () => (broker.getLocalService("users") as any).adapter;

beforeAll(async () => {
	broker = await startBroker([UsersService]);
});
afterAll(() => broker.stop());

const register = (email: string, password = "password123") =>
	broker.call<any, any>("users.register", { name: "Test", email, password });

describe("users.register", () => {
	it("stores an argon2id hash, never the password, and returns no hash", async () => {
		const { user, token } = await register("Hash@Test.io");
		expect(user).toEqual(expect.objectContaining({ email: "hash@test.io", role: "customer" }));
		expect(Object.keys(user)).not.toEqual(expect.arrayContaining(["passwordHash"]));
		const stored = await collection().findOne({ email: "hash@test.io" });
		expect(stored.passwordHash).toMatch(/^\$argon2id\$/);
		expect(JSON.stringify(stored)).not.toContain("password123");
		expect(jwt.decode(token)).toMatchObject({ sub: user.id, role: "customer" });
	});

	it("refuses a taken email, also when two registrations race", async () => {
		const results = await Promise.allSettled([
			register("race@test.io"),
			register("race@test.io"),
			register("RACE@test.io"),
		]);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(1);
		for (const r of results.filter(r => r.status === "rejected"))
			expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 409, type: "EMAIL_TAKEN" });
		expect(await collection().count({ query: { email: "race@test.io" } })).toBe(1);
	});
});

describe("users.login", () => {
	beforeAll(() => register("login@test.io", "the right one"));

	it("returns the user and a token for the right password", async () => {
		const res = await broker.call<any, any>("users.login", { email: " LOGIN@test.io ", password: "the right one" });
		expect(res.user.email).toBe("login@test.io");
		expect(await broker.call("users.resolveToken", { token: res.token })).toEqual({
			id: res.user.id,
			role: "customer",
		});
	});

	it("answers a wrong password and an unknown email with the same 401", async () => {
		const [wrong, unknown] = await Promise.allSettled([
			broker.call("users.login", { email: "login@test.io", password: "the wrong one" }),
			broker.call("users.login", { email: "nobody@test.io", password: "the right one" }),
		]);
		for (const result of [wrong, unknown]) {
			expect(result).toMatchObject({
				status: "rejected",
				reason: { code: 401, message: "Invalid email or password" },
			});
		}
	});
});

describe("users.resolveToken", () => {
	it("rejects forged, expired and orphaned tokens", async () => {
		const { user } = await register("tokens@test.io");
		const forged = jwt.sign({ role: "admin" }, "another secret", { subject: user.id });
		const expired = jwt.sign({ role: "customer" }, "test-secret", { subject: user.id, expiresIn: -10 });
		const orphan = jwt.sign({ role: "admin" }, "test-secret", { subject: "noSuchUser000000" });
		const none = jwt.sign({ role: "admin" }, "", { subject: user.id, algorithm: "none" });
		for (const token of [forged, expired, orphan, none, "garbage"]) {
			expect(await broker.call("users.resolveToken", { token })).toBeNull();
		}
	});

	it("takes the role from the account, not from the token", async () => {
		const { user } = await register("role@test.io");
		const token = jwt.sign({ role: "admin" }, "test-secret", { subject: user.id });
		expect(await broker.call("users.resolveToken", { token })).toEqual({ id: user.id, role: "customer" });
	});
});

describe("admin account", () => {
	it("exists with ADMIN_EMAIL and ADMIN_PASSWORD after start", async () => {
		const res = await broker.call<any, any>("users.login", {
			email: "admin@moleshop.test",
			password: "admin-password",
		});
		expect(res.user.role).toBe("admin");
	});

	it("takes ADMIN_PASSWORD again at the next start", async () => {
		const admin = await collection().findOne({ email: "admin@moleshop.test" });
		await collection().updateMany(
			{ email: "admin@moleshop.test" },
			{ $set: { passwordHash: "changed elsewhere", role: "customer" } },
		);
		await (broker.getLocalService("users") as any).ensureAdmin();
		const res = await broker.call<any, any>("users.login", {
			email: "admin@moleshop.test",
			password: "admin-password",
		});
		expect(res.user).toMatchObject({ id: String(admin._id), role: "admin" });
	});
});

describe("JWT_SECRET", () => {
	it("is required in production", () => {
		const env = { ...process.env };
		try {
			process.env.NODE_ENV = "production";
			delete process.env.JWT_SECRET;
			jest.isolateModules(() => {
				// A fresh module registry, so the service reads the production environment: only require() loads it here.
				/* eslint-disable @typescript-eslint/no-require-imports */
				const { ServiceBroker } = require("moleculer");
				const schema = require("../../services/users/users.service").default;
				/* eslint-enable @typescript-eslint/no-require-imports */
				const prodBroker = new ServiceBroker({ logger: false });
				expect(() => prodBroker.createService(schema)).toThrow(/JWT_SECRET must be set/);
			});
		} finally {
			process.env = env;
		}
	});
});
