#!/usr/bin/env python3
"""A stand-in OpenAI-compatible model for measuring the LLM plumbing without a key.

It answers the three COMPASS analyst steps the way the binary's end-to-end test
provider does: it proposes one hypothesis on the service of the digest's most confident
observation citing that observation, asks one follow-up PromQL query about it, and
writes a fixed summary. It reports no usage, so COMPASS charges its own counted prompt
tokens (exact tiktoken counts for gpt-4o-mini). It knows nothing about any data set.

    python3 scripts/llm-test-provider.py 18080 &
    cat > /tmp/llm.toml <<TOML
    version = 1
    [llm]
    provider = "openai"
    model = "gpt-4o-mini"
    base_url = "http://127.0.0.1:18080/v1"
    TOML
    compass demo --llm-config /tmp/llm.toml --format json | jq .llm.calls
    compass eval nezha --data ../shared/data/nezha --out on.jsonl --llm-config /tmp/llm.toml
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def first_observation(digest):
    lines = digest.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("OBSERVATIONS") and i + 1 < len(lines):
            fields = lines[i + 1].split(" | ")
            if len(fields) >= 7 and " " not in fields[0]:
                return fields[0], fields[2].split("/")[0]
    return None


def fault_kinds(digest):
    for line in digest.splitlines():
        if line.startswith("FAULT KINDS: "):
            return line[len("FAULT KINDS: "):].split(", ")
    return ["unknown"]


def answer(body):
    schema = (body.get("response_format") or {}).get("json_schema") or {}
    user = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
    if schema.get("name") == "write_summary":
        return {"summary": "Stand-in summary: the leading hypothesis is the one the agents ranked first."}
    first = first_observation(user)
    if first is None:
        return {"hypotheses": [], "queries": []} if "queries" in json.dumps(schema) else {"hypotheses": []}
    obs, service = first
    out = {"hypotheses": [{
        "statement": f"stand-in: the fault starts in {service}",
        "service": service,
        "fault_kind": fault_kinds(user)[0],
        "confidence": 0.5,
        "evidence": [obs],
    }]}
    if "queries" in schema.get("schema", {}).get("properties", {}):
        out["queries"] = [{"language": "promql", "query": "up", "reason": "is the suspect up"}]
    return out


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if len(sys.argv) > 2:
            with open(sys.argv[2], "a") as f:
                f.write(json.dumps(body) + "\n")
        reply = json.dumps({
            "id": "chatcmpl-stand-in", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(answer(body))}}],
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 18080), Handler).serve_forever()
