/**
 * payments: the ledger of charges and refunds (collection `payments`).
 *
 * One charge and at most one refund per order, each a ledger entry with a
 * unique key (`charge:<orderId>`, `refund:<orderId>`) that is also the
 * provider's idempotency key. Charging twice for an order answers with the
 * first result and never charges twice: the entry is created `pending`
 * before the provider is asked, and the provider answers a repeated key with
 * its first charge.
 *
 * A provider that does not answer in time leaves the charge ambiguous: it may
 * or may not exist. payments then asks the provider for the charge by its key;
 * when the provider has none, the charge is sent again under the same key (safe
 * by the provider's idempotency). If even that gets no answer the entry stays
 * `pending` and the caller is told so; nothing is guessed.
 */
import type { Service, ServiceSchema } from "moleculer";
import { DbMixin, type DbMethods } from "../../platform/db.mixin";
import { config } from "../../platform/config";
import { isClientRefusal } from "../../platform/errors";
import { countMetric } from "../../platform/metrics";
import type { ShopContext } from "../../contracts/context";
import {
	CHARGE_TIMEOUT_MS,
	MAX_CHARGE,
	paymentMethodParam,
	type PaymentProvider,
	type ProviderCharge,
	simulatedProvider,
} from "../../contracts/payments";
import { currencyParam, idParam } from "../../platform/params";

export type EntryStatus = "pending" | "succeeded" | "failed";

export interface LedgerEntry {
	id: string;
	orderId: string;
	kind: "charge" | "refund";
	userId: string;
	amount: number;
	currency: string;
	status: EntryStatus;
	failureCode?: string;
	failureMessage?: string;
	card?: { brand: string; last4: string };
	createdAt: Date;
	updatedAt: Date;
}

/** What `charge` answers: the ledger entry of the order's charge. `pending` means not known yet. */
export type ChargeResult = Pick<
	LedgerEntry,
	"orderId" | "status" | "amount" | "currency" | "failureCode" | "failureMessage" | "card"
>;

interface ChargeParams {
	orderId: string;
	userId: string;
	amount: number;
	currency: string;
	paymentMethod: string;
}

/** A stored ledger entry. */
interface EntryDoc extends Omit<LedgerEntry, "id"> {
	_id: unknown;
	key: string;
	providerId?: string;
}

interface PaymentsMethods extends DbMethods {
	provider: PaymentProvider;
	openEntry(entry: Omit<EntryDoc, "_id" | "status" | "createdAt" | "updatedAt">): Promise<EntryDoc>;
	askProvider(key: string, ask: () => Promise<ProviderCharge>): Promise<ProviderCharge | null>;
	settle(doc: EntryDoc, changes: Partial<EntryDoc>): Promise<EntryDoc>;
}

const PaymentsService: ServiceSchema<object, object, object, Service & PaymentsMethods> = {
	name: "payments",

	mixins: [
		DbMixin({
			collection: "payments",
			schema: {
				key: String,
				orderId: String,
				kind: String,
				userId: String,
				amount: Number,
				currency: String,
				status: String,
				providerId: String,
				failureCode: String,
				failureMessage: String,
				card: { brand: String, last4: String },
				createdAt: Date,
				updatedAt: Date,
			},
			indexes: [{ field: "key", unique: true }, { field: "orderId" }, { field: "status" }],
		}),
	],

	settings: {
		fields: [
			"id",
			"orderId",
			"kind",
			"userId",
			"amount",
			"currency",
			"status",
			"failureCode",
			"failureMessage",
			"card",
			"createdAt",
			"updatedAt",
		],
	},

	actions: {
		/** Charge an order once. Repeats answer with the first result; `pending` means the provider's answer is not known yet. */
		charge: {
			visibility: "public",
			timeout: CHARGE_TIMEOUT_MS,
			params: {
				$$strict: true,
				orderId: idParam,
				userId: idParam,
				amount: { type: "number", integer: true, min: 0, max: MAX_CHARGE },
				currency: currencyParam,
				paymentMethod: paymentMethodParam,
			},
			async handler(ctx: ShopContext<ChargeParams>): Promise<ChargeResult> {
				const { orderId, userId, amount, currency, paymentMethod } = ctx.params;
				const key = `charge:${orderId}`;
				let entry = await this.openEntry({ key, orderId, kind: "charge", userId, amount, currency });
				if (entry.status === "pending" && entry.amount === 0)
					entry = await this.settle(entry, { status: "succeeded" }); // nothing to take
				if (entry.status === "pending") {
					const charge = await this.askProvider(key, () =>
						this.provider.charge({ key, amount: entry.amount, currency: entry.currency, paymentMethod }),
					);
					if (charge) {
						entry = await this.settle(entry, {
							status: charge.status,
							providerId: charge.chargeId,
							card: charge.card,
							...(charge.failureCode && {
								failureCode: charge.failureCode,
								failureMessage: charge.failureMessage,
							}),
						});
					}
				}
				return this.toEntity(ctx, entry);
			},
		},

		/** Refund an order's charge in full, once. Answers `{ status: "none" }` when nothing was charged. */
		refund: {
			visibility: "public",
			timeout: CHARGE_TIMEOUT_MS,
			params: { $$strict: true, orderId: idParam },
			async handler(ctx: ShopContext<{ orderId: string }>) {
				const { orderId } = ctx.params;
				const charge = (await this.adapter.findOne({ key: `charge:${orderId}` })) as EntryDoc | null;
				if (!charge || charge.status !== "succeeded" || charge.amount === 0)
					return { orderId, status: "none", amount: 0 };
				const key = `refund:${orderId}`;
				let entry = await this.openEntry({
					key,
					orderId,
					kind: "refund",
					userId: charge.userId,
					amount: charge.amount,
					currency: charge.currency,
				});
				if (entry.status === "pending") {
					const refund = await this.provider.refund({
						key,
						chargeId: charge.providerId!,
						amount: entry.amount,
					});
					entry = await this.settle(entry, { status: refund.status, providerId: refund.refundId });
				}
				return this.toEntity(ctx, entry);
			},
		},

		/** The ledger entries of one order, oldest first. */
		forOrder: {
			visibility: "public",
			params: { $$strict: true, orderId: idParam },
			async handler(ctx: ShopContext<{ orderId: string }>): Promise<LedgerEntry[]> {
				const docs = await this.adapter.find({
					query: { orderId: ctx.params.orderId },
					sort: ["createdAt"],
				} as object);
				return this.transformDocuments(ctx, {}, docs);
			},
		},

		/** Money that moved, per currency: succeeded charges and refunds (for reports and reconciliation). */
		totals: {
			visibility: "public",
			params: { $$strict: true },
			async handler() {
				const docs = (await this.adapter.find({ query: { status: "succeeded" } })) as LedgerEntry[];
				const totals: Record<
					string,
					{ charged: number; refunded: number; net: number; charges: number; refunds: number }
				> = {};
				for (const { kind, amount, currency } of docs) {
					const t = (totals[currency] ??= { charged: 0, refunded: 0, net: 0, charges: 0, refunds: 0 });
					if (kind === "charge") {
						t.charged += amount;
						t.charges++;
					} else {
						t.refunded += amount;
						t.refunds++;
					}
					t.net = t.charged - t.refunded;
				}
				return totals;
			},
		},
	},

	methods: {
		/** The ledger entry under `key`: the existing one, or a new `pending` one. */
		async openEntry(entry) {
			const existing = await this.adapter.findOne({ key: entry.key });
			if (existing) return existing;
			const now = new Date();
			// A concurrent repeat may have opened it first.
			return (
				await this.insertOrGet(
					{ ...entry, status: "pending", createdAt: now, updatedAt: now },
					{ key: entry.key },
				)
			).doc;
		},

		/**
		 * The provider's charge under `key`: asked with `ask`; when the answer does not
		 * come, looked up by key, and asked once more if the provider has none.
		 * null when the provider could not tell.
		 */
		async askProvider(key, ask) {
			try {
				return await ask();
			} catch (err) {
				if (isClientRefusal(err)) throw err; // refused, not lost
				this.logger.warn(
					`No answer from the payment provider for ${key} (${(err as Error).message}); looking the charge up.`,
				);
			}
			try {
				return (await this.provider.findCharge(key)) ?? (await ask());
			} catch (err) {
				this.logger.warn(
					`The payment provider cannot tell what became of ${key} yet (${(err as Error).message}); it stays pending.`,
				);
				return null;
			}
		},

		/** Record the provider's answer on a pending entry (a concurrent repeat may have recorded it first: same answer). */
		async settle(doc, changes) {
			const settled = await this.adapter.updateMany(
				{ _id: doc._id, status: "pending" },
				{ $set: { ...changes, updatedAt: new Date() } },
			);
			// Money moved, counted by the one call that recorded it (a repeat finds the entry settled).
			if (settled === 1 && changes.status === "succeeded" && doc.amount > 0)
				countMetric(
					this.broker,
					doc.kind === "charge" ? "paymentsCharged" : "paymentsRefunded",
					{
						currency: doc.currency,
					},
					doc.amount,
				);
			return (await this.adapter.findById(doc._id)) as EntryDoc;
		},
	},

	created() {
		this.provider = simulatedProvider(this.broker, config.payments.providerTimeoutMs);
	},
};

export default PaymentsService;
