/**
 * Starts moleshop in-process for a test: one broker with the real broker
 * options and the real services, the gateway on a free port.
 */
import type { AddressInfo } from "node:net";
import { type BrokerOptions, ServiceBroker, type ServiceSchema } from "moleculer";
import { config } from "../../platform/config";
import brokerConfig from "../../moleculer.config";
import { dropDatabase } from "./database";
import ApiService from "../../services/api/api.service";
import CartsService from "../../services/carts/carts.service";
import OrdersService from "../../services/orders/orders.service";
import ProductsService from "../../services/products/products.service";
import CatalogService from "../../services/api/catalog.service";
import PricingService from "../../services/pricing/pricing.service";
import UsersService from "../../services/users/users.service";
import PaymentProviderService from "../../services/payment-provider/payment-provider.service";
import PaymentsService from "../../services/payments/payments.service";
import InvoicesService from "../../services/invoices/invoices.service";
import NotificationsService from "../../services/notifications/notifications.service";
import AnalyticsService from "../../services/analytics/analytics.service";
import EventsService from "../../services/events/events.service";

export const ALL_SERVICES: ServiceSchema<any, any>[] = [
	UsersService,
	ProductsService,
	CatalogService,
	PricingService,
	CartsService,
	OrdersService,
	PaymentProviderService,
	PaymentsService,
	InvoicesService,
	NotificationsService,
	AnalyticsService,
	EventsService,
	ApiService,
];

let brokers = 0;

/**
 * A started broker running `services` (all of them by default). With MongoDB,
 * stopping it then drops the test file's database: like the in-memory NeDB
 * store, every broker of a test starts on empty collections.
 */
export async function startBroker(
	services: ServiceSchema<any, any>[] = ALL_SERVICES,
	options: BrokerOptions = {},
): Promise<ServiceBroker> {
	const broker = new ServiceBroker({ ...brokerConfig, nodeID: `test-${process.pid}-${++brokers}`, ...options });
	if (config.mongoUri && services.some(schema => schema.name !== "api")) {
		const stop = broker.stop.bind(broker);
		broker.stop = async () => {
			await stop();
			await dropDatabase(config.mongoUri!);
		};
	}
	for (const schema of services) broker.createService(schema);
	await broker.start();
	return broker;
}

/** Run `work` while the local service `name` is gone (a node of it down), then create it again from its schema. */
export async function withoutService<T>(broker: ServiceBroker, name: string, work: () => Promise<T>): Promise<T> {
	const service = broker.getLocalService(name)!;
	const schema = (service as unknown as { originalSchema: ServiceSchema }).originalSchema;
	await broker.destroyService(service);
	try {
		return await work();
	} finally {
		broker.createService(schema);
		await broker.waitForServices(name);
	}
}

export interface HttpResponse<T = any> {
	status: number;
	headers: Headers;
	body: T;
	text: string;
}

export interface RequestOptions {
	token?: string;
	body?: unknown;
	/** Sent as is instead of JSON-encoding `body`. */
	raw?: string;
	headers?: Record<string, string>;
}

export interface Shop {
	broker: ServiceBroker;
	baseUrl: string;
	request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<HttpResponse<T>>;
	/** Register a new customer; returns its token and user. */
	signUp(name?: string): Promise<{ token: string; user: any; email: string; password: string }>;
	adminToken(): Promise<string>;
	stop(): Promise<void>;
}

/** Check out `quantity` of one product through the gateway (POST /api/v1/orders), as a customer's client does. */
export function checkoutOne(
	shop: Shop,
	token: string,
	productId: string,
	paymentMethod: string,
	quantity: number,
	headers: Record<string, string> = {},
) {
	return shop.request("POST", "/api/v1/orders", {
		token,
		headers,
		body: { items: [{ productId, quantity }], paymentMethod },
	});
}

let users = 0;

/** Start all of moleshop (with these broker options over the real ones) and an HTTP client for its gateway. */
export async function startShop(
	services: ServiceSchema<any, any>[] = ALL_SERVICES,
	options: BrokerOptions = {},
): Promise<Shop> {
	const broker = await startBroker(services, options);
	const api = broker.getLocalService("api") as any;
	const { port } = api.server.address() as AddressInfo;
	const baseUrl = `http://127.0.0.1:${port}`;

	async function request(method: string, path: string, opts: RequestOptions = {}) {
		const headers: Record<string, string> = { ...opts.headers };
		if (opts.token) headers.authorization = `Bearer ${opts.token}`;
		let body: string | undefined = opts.raw;
		if (opts.body !== undefined) body = JSON.stringify(opts.body);
		if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
		const res = await fetch(baseUrl + path, { method, headers, body });
		const text = await res.text();
		let parsed: any = text;
		try {
			parsed = text ? JSON.parse(text) : null;
		} catch {
			// not JSON: keep the text
		}
		return { status: res.status, headers: res.headers, body: parsed, text };
	}

	return {
		broker,
		baseUrl,
		request,
		async signUp(name = "Customer") {
			const email = `customer${++users}-${process.pid}@moleshop.test`;
			const password = "correct horse battery";
			const res = await request("POST", "/api/v1/auth/register", { body: { name, email, password } });
			if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${res.text}`);
			return { token: res.body.token, user: res.body.user, email, password };
		},
		async adminToken() {
			const res = await request("POST", "/api/v1/auth/login", {
				body: { email: "admin@moleshop.test", password: "admin-password" },
			});
			if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${res.text}`);
			return res.body.token;
		},
		stop: () => broker.stop(),
	};
}
