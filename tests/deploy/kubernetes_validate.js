// Validates Kubernetes manifests offline against the schemas of the npm kubernetes-models
// package, strictly: a field the schema does not know is an error, as `kubectl apply
// --validate=strict` makes it. kubernetes-models' validators ignore unknown fields, so each
// object is wrapped in a Proxy that records which fields the validator reads; a field
// present in the manifest that no validator read is unknown to the schema.
//   NODE_PATH=<dir>/node_modules node kubernetes_validate.js FILE...
// Prints one line per problem ("FILE: Kind/name: /path: message") and exits 1 if any.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

// The package exports no _schemas/ subpath: load the files by their path.
const schemas = path.join(path.dirname(require.resolve("kubernetes-models")), "_schemas");

function schemaModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const groupName = group
    .split(".")[0]
    .split("-")
    .map((part) => part[0].toUpperCase() + part.slice(1))
    .join("");
  const versionName = version[0].toUpperCase() + version.slice(1);
  return path.join(schemas, `IoK8sApi${groupName}${versionName}${kind}.js`);
}

function tracked(value, path, reads) {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key) {
      if (typeof key === "string" && Object.prototype.hasOwnProperty.call(target, key)) {
        const child = Array.isArray(target) ? `${path}/${key}` : `${path}/${key}`;
        reads.add(child);
        return tracked(target[key], child, reads);
      }
      return target[key];
    },
  });
}

function unread(value, path, reads, out) {
  if (value === null || typeof value !== "object") return;
  for (const key of Object.keys(value)) {
    const child = `${path}/${key}`;
    if (!reads.has(child)) {
      out.push(`${child}: unknown field "${key}"`);
      continue;
    }
    unread(value[key], child, reads, out);
  }
}

let problems = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null);
  if (docs.length === 0) {
    console.log(`${file}: no documents`);
    problems++;
  }
  for (const doc of docs) {
    const label = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
    let validate;
    try {
      ({ validate } = require(schemaModule(String(doc.apiVersion), String(doc.kind))));
    } catch (e) {
      console.log(`${file}: ${label}: no schema for ${doc.apiVersion} ${doc.kind}`);
      problems++;
      continue;
    }
    const reads = new Set();
    const errors = [];
    if (!validate(tracked(doc, "", reads))) {
      for (const e of validate.errors) {
        errors.push(`${e.instancePath || "/"}: ${e.message || e.keyword} ${JSON.stringify(e.params)}`);
      }
    }
    unread(doc, "", reads, errors);
    for (const e of errors) console.log(`${file}: ${label}: ${e}`);
    problems += errors.length;
  }
}
process.exit(problems === 0 ? 0 : 1);
