/**
 * invoices: one invoice per paid order (collection `invoices`).
 *
 * Numbers come from a counter in the collection, incremented atomically, so
 * they are unique and increasing whatever the number of concurrent payments
 * (and nodes, on MongoDB). Issuing is idempotent per order: the order id is a
 * unique key, and a repeat answers with the invoice already issued. A number
 * drawn by a repeat that lost that race is not reused, so numbers can have gaps.
 */
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import { notFound } from "../../contracts/errors";
import { countMetric } from "../../platform/metrics";
import type { ShopContext } from "../../contracts/context";
import { type Quote, QUOTE_FIELDS, QUOTE_SCHEMA } from "../../contracts/pricing";
import { currencyParam, idParam } from "../../platform/params";

/** An invoice: the order's quote (lines, discount, shipping, tax, totals in cents) under a number. */
export interface Invoice extends Quote {
	number: string;
	orderId: string;
	userId: string;
	issuedAt: Date;
}

const centsParam = { type: "number", integer: true, min: 0, max: 1_000_000_000 } as const;
/** An invoice line: exactly these fields (an unknown one is refused, as everywhere, rather than reaching the store). */
const lineParam = {
	type: "object",
	strict: true,
	props: {
		productId: idParam,
		sku: "string",
		name: "string",
		unitPrice: centsParam,
		quantity: centsParam,
		lineTotal: centsParam,
	},
} as const;

const formatNumber = (seq: number) => `INV-${String(seq).padStart(6, "0")}`;

const InvoicesService: ServiceSchema<object, object, object, Service & DbMethods> = {
	name: "invoices",

	mixins: [
		DbMixin({
			collection: "invoices",
			schema: {
				number: String,
				seq: Number,
				orderId: String,
				userId: String,
				...QUOTE_SCHEMA,
				issuedAt: Date,
			},
			indexes: [
				{ field: "orderId", unique: true, sparse: true },
				{ field: "number", unique: true, sparse: true },
				{ field: "userId" },
			],
		}),
	],

	settings: {
		fields: ["number", "orderId", "userId", ...QUOTE_FIELDS, "issuedAt"],
	},

	actions: {
		/** Issue the invoice of a paid order (its priced lines and totals), or answer with the one already issued. */
		issue: {
			visibility: "public",
			params: {
				$$strict: true,
				orderId: idParam,
				userId: idParam,
				items: { type: "array", min: 1, items: lineParam },
				subtotal: centsParam,
				discount: centsParam,
				discountCode: { type: "string", optional: true },
				shipping: centsParam,
				tax: centsParam,
				total: centsParam,
				currency: currencyParam,
				country: { type: "string", pattern: /^[A-Z]{2}$/ },
			},
			async handler(ctx: ShopContext<Omit<Invoice, "number" | "issuedAt">>): Promise<Invoice> {
				const existing = await this.adapter.findOne({ orderId: ctx.params.orderId });
				if (existing) return this.toEntity(ctx, existing);
				const seq = await this.nextSequence("invoice");
				const { doc, created } = await this.insertOrGet(
					{ ...ctx.params, seq, number: formatNumber(seq), issuedAt: new Date() },
					{ orderId: ctx.params.orderId },
				);
				if (created) countMetric(this.broker, "invoicesIssued");
				return this.toEntity(ctx, doc);
			},
		},

		/** The invoice of one of the signed-in user's orders (404 for anyone else's, or before it is paid). */
		forOrder: {
			auth: "user",
			params: { $$strict: true, id: idParam },
			async handler(ctx: ShopContext<{ id: string }>): Promise<Invoice> {
				const doc = (await this.adapter.findOne({ orderId: ctx.params.id })) as
					(Invoice & { _id: unknown }) | null;
				if (!doc || doc.userId !== ctx.meta.user!.id) throw notFound("Invoice", ctx.params.id);
				return this.toEntity(ctx, doc);
			},
		},
	},
};

export default InvoicesService;
