/**
 * The two moleculer-db adapters behind the db mixin (platform/db.mixin.ts), each
 * with the few changes that give services one contract whatever the store (the
 * embedded one, NeDB's, is in platform/embedded-store.ts):
 *
 * - **Entities from any stored form.** A service turns into an entity what a
 *   read answered, or a plain copy of it (`plain()`), or an object built from one
 *   (`{ ...order, status }`). moleculer-db-adapter-mongoose converts only mongoose
 *   documents (it calls `entity.toJSON()`); NeDB's adapter converts the object it
 *   is given in place (it deletes `_id` from the caller's object). Here both take
 *   any of them and never touch the caller's object: on MongoDB a plain object is
 *   hydrated first, so it becomes exactly the document a read would have answered.
 * - **Counts that are always numbers.** `updateMany` answers how many documents the
 *   filter matched, and so the update applied to (NeDB's `numAffected`). An update
 *   that mongoose casts to nothing (it names no declared field) is an error, not an
 *   `undefined` count: a caller looping until a conditional update applies would
 *   otherwise loop forever.
 *
 * The db mixin also makes every mongoose schema strict in both directions
 * (`strict` and `strictQuery: "throw"`): a filter or an update that names a field
 * the schema does not declare is an error, never a path mongoose silently drops
 * (which would widen a conditional update).
 */
import MongooseDbAdapter from "moleculer-db-adapter-mongoose";
import mongoose from "mongoose";

/** What mongoose answered for an update or a delete. */
interface WriteResult {
	acknowledged: boolean;
	matchedCount?: number;
	deletedCount?: number;
}

/** The field names of a filter or an update, never its values (which may be secrets, such as a password hash). */
const pathsOf = (doc: object): string[] =>
	Object.entries(doc).flatMap(([key, value]) =>
		key.startsWith("$") && value && typeof value === "object" ? Object.keys(value).map(k => `${key}.${k}`) : [key],
	);

/** A write mongoose did not send: it cast to nothing. */
function notSent(
	model: { collection: { collectionName: string } },
	what: string,
	detail: { query: object; update?: object },
): Error {
	const named = [...pathsOf(detail.query), ...(detail.update ? pathsOf(detail.update) : [])].join(", ") || "no field";
	return new Error(
		`The ${what} of '${model.collection.collectionName}' cast to nothing the schema declares (it names ${named})`,
	);
}

/** moleculer-db-adapter-mongoose, converting any stored form to an entity, with counts that are always numbers. */
export class MongoStoreAdapter extends MongooseDbAdapter<mongoose.Document> {
	entityToObject(entity: unknown, ctx?: unknown, params?: unknown): Promise<object> {
		const doc = entity instanceof mongoose.Document ? entity : this.model.hydrate(entity as object);
		// The adapter also takes the context and params (for populating virtuals); its typings list only the entity.
		return Reflect.apply(super.entityToObject, this, [doc, ctx, params]);
	}

	async updateMany(query: object, update: object): Promise<number> {
		const result = (await this.model.updateMany(query, update)) as WriteResult;
		if (!result.acknowledged || result.matchedCount == null) throw notSent(this.model, "update", { query, update });
		return result.matchedCount;
	}

	async removeMany(query: object): Promise<number> {
		const result = (await this.model.deleteMany(query)) as WriteResult;
		if (!result.acknowledged || result.deletedCount == null) throw notSent(this.model, "delete", { query });
		return result.deletedCount;
	}
}
