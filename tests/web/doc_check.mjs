// Replays batches on the creator page's document copy (server/web/creator/doc.js) in node
// and prints its content hashes, for tests/test_creator_page.py to compare with Python's.
// Usage: node doc_check.mjs CASE.msgpack  (CASE: {Document, Version, Batches: [{Version, Ops}],
// Surfaces?: [part]}); each listed part's surface (RGBA) is written to CASE.<part>.rgba at the end.
import { readFileSync, writeFileSync } from "node:fs";
import { unpack } from "../../server/web/creator/api.js";
import { DocReplica, NeedsSnapshot, surface } from "../../server/web/creator/doc.js";

const c = unpack(readFileSync(process.argv[2]));
const replica = new DocReplica(c.Document, c.Version);
const out = { initial: replica.doc.contentHash(), after: [], touched: [] };
for (const b of c.Batches) {
  try {
    out.touched.push([...replica.ordered(b.Version, b.Ops)].sort());
    out.after.push(replica.doc.contentHash());
  } catch (e) {
    if (!(e instanceof NeedsSnapshot)) throw e;
    out.after.push("NeedsSnapshot");
    break;
  }
}
out.version = replica.version;
for (const part of c.Surfaces || []) writeFileSync(`${process.argv[2]}.${part}.rgba`, surface(replica.doc, part));
console.log(JSON.stringify(out));
