/**
 * The two moleculer-db adapters behind the db mixin (platform/db.mixin.ts), each
 * with the few changes that give services one contract whatever the store:
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
 * - **Cheap writes on the embedded store, exactly as durable.** NeDB appends each
 *   write (every document it changed, as one line each) to the collection's
 *   datafile with `fs.promises.appendFile`: open, write, close, three trips
 *   through the thread pool, while NeDB's executor holds every later operation
 *   of the collection until the append is done. Here the datafile stays open and
 *   each write's lines go out in one `write(2)` on that descriptor, before the
 *   operation answers (see DatafileAppender): one trip. The adapter also calls NeDB's
 *   promise API directly (moleculer-db's adapter wraps the callback API in
 *   `util.promisify`, which builds a deprecation warning on every call).
 *
 * The db mixin also makes every mongoose schema strict in both directions
 * (`strict` and `strictQuery: "throw"`): a filter or an update that names a field
 * the schema does not declare is an error, never a path mongoose silently drops
 * (which would widen a conditional update).
 */
import fs from "node:fs";
import Datastore from "@seald-io/nedb";
import nedbModel from "@seald-io/nedb/lib/model.js";
import DbService from "moleculer-db";
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

/** The part of NeDB's persistence (lib/persistence.js, one per datastore) that writes the datafile. */
interface NedbPersistence {
	inMemoryOnly: boolean;
	filename: string;
	modes: { fileMode: number };
	afterSerialization(line: string): string;
	/** Append the new state of these documents (one line each); NeDB's executor awaits it inside the operation. */
	persistNewStateAsync(docs: object[]): Promise<void>;
	/** Rewrite the whole datafile (compaction: at every load, and on `compactDatafileAsync`). */
	persistCachedDatabaseAsync(): Promise<void>;
	/** Delete the datafile (`dropDatabaseAsync`). */
	dropDatabaseAsync(): Promise<void>;
}

/** Write `bytes` from `offset` at the end of the file open as `fd` (thread pool); how many bytes went out. */
function writeAt(fd: number, bytes: Buffer, offset: number): Promise<number> {
	return new Promise((resolve, reject) =>
		fs.write(fd, bytes, offset, bytes.length - offset, null, (err, written) =>
			err ? reject(err) : resolve(written),
		),
	);
}

/**
 * One collection's NeDB datafile, kept open for appending.
 *
 * Durability is exactly NeDB's own: a write's lines have reached the operating
 * system (`write(2)` returned; no fsync, as NeDB never syncs an append) before
 * the store operation answers, so a crash of the process (even SIGKILL) loses
 * nothing that was acknowledged, and a power loss can lose what the OS had not
 * flushed yet, as before. NeDB's executor runs a collection's operations, reads
 * included, one at a time and awaits the append inside each, so no operation
 * sees a change before it is on the OS, and the lines go out in order.
 *
 * The write goes through the thread pool (one round trip instead of
 * `appendFile`'s open, write and close), never on the event loop: a write the
 * file system holds up (a journal commit) delays this collection only.
 *
 * NeDB rewrites the datafile when it compacts it (it writes `<file>~` and
 * renames it over the datafile): the descriptor would then point at the old,
 * unlinked file, so it is closed before every rewrite (and before the file is
 * dropped) and the next append opens the new file. Both run inside NeDB's
 * executor, like every append, so no append can fall between them.
 */
export class DatafileAppender {
	private fd: number | null = null;
	private closed = false;
	/** The append under way, if any (a descriptor is closed only once it is done). */
	private writing: Promise<void> | null = null;

	constructor(
		private readonly filename: string,
		private readonly mode: number,
	) {}

	/** Append `text` to the datafile, all of it, before resolving (rejects with what the file system answers). */
	async append(text: string): Promise<void> {
		const bytes = Buffer.from(text, "utf8");
		if (this.closed) {
			// An operation still queued when the store closed: written all the same, without keeping the file open.
			return fs.promises.appendFile(this.filename, bytes, { mode: this.mode });
		}
		try {
			this.fd ??= fs.openSync(this.filename, "a", this.mode);
			for (let offset = 0; offset < bytes.length;) offset += await writeAt(this.fd, bytes, offset);
		} catch (err) {
			this.release(); // the next append starts from a freshly opened file
			throw err;
		}
	}

	/** Close the descriptor; the next append opens the datafile again (the new one after a rewrite). */
	release(): void {
		if (this.fd === null) return;
		const fd = this.fd;
		this.fd = null;
		// Never under a write in flight: its descriptor number could be reused by another file meanwhile.
		if (this.writing) void this.writing.catch(() => undefined).finally(() => fs.closeSync(fd));
		else fs.closeSync(fd);
	}

	/** Close for good (the store disconnects). */
	close(): void {
		this.release();
		this.closed = true;
	}
}

/** Have the datastore's persistence append through one open `DatafileAppender` (see there), serialising as NeDB does. */
function appendThroughOpenFile(db: Datastore): DatafileAppender | null {
	const persistence = db.persistence as unknown as NedbPersistence;
	if (persistence.inMemoryOnly) return null;
	const file = new DatafileAppender(persistence.filename, persistence.modes.fileMode);
	persistence.persistNewStateAsync = async (docs: object[]) => {
		let lines = "";
		for (const doc of docs) lines += `${persistence.afterSerialization(nedbModel.serialize(doc))}\n`;
		if (lines) await file.append(lines);
	};
	const rewrite = persistence.persistCachedDatabaseAsync.bind(persistence);
	persistence.persistCachedDatabaseAsync = () => {
		file.release();
		return rewrite();
	};
	const drop = persistence.dropDatabaseAsync.bind(persistence);
	persistence.dropDatabaseAsync = () => {
		file.release();
		return drop();
	};
	return file;
}

/**
 * moleculer-db's NeDB adapter, converting a copy of the stored object (never the caller's own), writing
 * through an open datafile, and calling NeDB's promise API directly.
 */
export class EmbeddedStoreAdapter extends DbService.MemoryAdapter {
	/** NeDB's datastore, once connected. */
	declare db: Datastore | undefined;
	private datafile: DatafileAppender | null = null;

	constructor(private readonly options?: { filename: string }) {
		super(options);
	}

	async connect(): Promise<void> {
		const db = new Datastore(this.options);
		this.datafile = appendThroughOpenFile(db);
		this.db = db;
		await db.loadDatabaseAsync();
	}

	async disconnect(): Promise<void> {
		this.datafile?.close();
		this.db = undefined;
	}

	private store(): Datastore {
		if (!this.db) throw new Error("The embedded store is not connected");
		return this.db;
	}

	// moleculer-db's typings of these differ from what its adapter answers (null when nothing is found, counts).
	findOne(query: object): Promise<object> {
		return this.store().findOneAsync(query) as Promise<object>;
	}

	findById(_id: unknown): Promise<object> {
		return this.store().findOneAsync({ _id }) as Promise<object>;
	}

	insert(entity: object): Promise<object> {
		return this.store().insertAsync(entity);
	}

	insertMany(entities: object[]): Promise<object[]> {
		return this.store().insertAsync(entities);
	}

	async updateMany(query: object, update: object): Promise<number> {
		return (await this.store().updateAsync(query, update, { multi: true })).numAffected;
	}

	async updateById(_id: unknown, update: object): Promise<object> {
		const { affectedDocuments } = await this.store().updateAsync({ _id }, update, { returnUpdatedDocs: true });
		return affectedDocuments as object;
	}

	removeMany(query: object): Promise<number> {
		return this.store().removeAsync(query, { multi: true });
	}

	removeById(_id: unknown): Promise<object> {
		return this.store().removeAsync({ _id }, {}) as unknown as Promise<object>;
	}

	clear(): Promise<void> {
		return this.store().removeAsync({}, { multi: true }) as unknown as Promise<void>;
	}

	async entityToObject(entity: unknown): Promise<object> {
		return { ...(entity as object) };
	}
}
