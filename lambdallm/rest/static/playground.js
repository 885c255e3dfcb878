// λλM playground: a chat over the REST tier's OpenAI-compatible API (/v1), streamed, with the user's own key.
// The key lives in this tab's sessionStorage and travels only in the Authorization header of same-origin calls.
import { serverTiming, showCalls, showStats, turn } from "./render.js";
import { EventParser } from "./sse.js";

const KEY = "lambdallm.playground.api-key";
const $ = (id) => document.getElementById(id);
const history = []; // the conversation as OpenAI messages (the system prompt is added to each request)
let running = null; // the AbortController of the answer being streamed
const STOPPED = { className: "stopped", textContent: "stopped" };

const apiKey = () => sessionStorage.getItem(KEY) || "";

function api(path, init = {}) {
  // No key, no header: a deployment with auth = "none" needs none.
  const headers = apiKey() ? { ...init.headers, Authorization: `Bearer ${apiKey()}` } : { ...init.headers };
  // Relative to the page (/playground), so the API is found under any prefix the server sits behind.
  return fetch(`v1/${path}`, { ...init, headers, cache: "no-store", credentials: "omit" });
}

async function failure(response) {
  let message = response.statusText || "error";
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not OpenAI's error object: the status says enough
  }
  if (response.status === 401 && !apiKey()) return "This server needs an API key (401 Unauthorized): enter it above.";
  if (response.status === 401) return `The API key was refused (401 Unauthorized): ${message}. Enter a valid key.`;
  return `The server answered ${response.status}: ${message}`;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function loadModels() {
  const select = $("model");
  select.disabled = true;
  const response = await api("models");
  if (!response.ok) {
    select.replaceChildren(new Option("enter the API key first", ""));
    throw new Error(await failure(response));
  }
  const { data } = await response.json();
  select.replaceChildren(...data.map((model) => new Option(model.id, model.id)));
  select.disabled = false;
}

async function useKey(event) {
  event.preventDefault();
  const typed = $("api-key").value.trim();
  if (typed) sessionStorage.setItem(KEY, typed);
  $("api-key").value = "";
  showKeyState();
  try {
    await loadModels();
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

function forgetKey() {
  sessionStorage.removeItem(KEY);
  showKeyState();
  $("model").replaceChildren(new Option("enter the API key first", ""));
  $("model").disabled = true;
}

function showKeyState() {
  $("api-key").placeholder = apiKey() ? "a key is set for this tab" : "the REST tier's key (kept in this tab only)";
}

function showMode() {
  $("schema-field").hidden = $("mode").value !== "json_schema";
  $("tools-field").hidden = $("mode").value !== "tools";
  $("tool-choice-field").hidden = $("mode").value !== "tools";
}

function parsedJson(id, what) {
  try {
    return JSON.parse($(id).value);
  } catch (error) {
    throw new Error(`The ${what} is not valid JSON: ${error.message}`);
  }
}

// The tool call of the last answer that has no result yet: the next message is its result.
function pendingCall() {
  const last = [...history].reverse().find((message) => message.role === "assistant");
  if (!last || !last.tool_calls) return null;
  const answered = new Set(history.filter((m) => m.role === "tool").map((m) => m.tool_call_id));
  return last.tool_calls.find((call) => !answered.has(call.id)) || null;
}

function showComposer() {
  const call = pendingCall();
  $("message-label").textContent = call ? `Result of the tool call ${call.function.name}` : "Message";
}

function request(message) {
  const body = {
    model: $("model").value,
    messages: [...history, message],
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($("temperature").value),
    max_tokens: Number($("max-tokens").value),
  };
  const system = $("system").value.trim();
  if (system) body.messages.unshift({ role: "system", content: system });
  if ($("mode").value === "json_schema") {
    const schema = parsedJson("schema", "JSON schema");
    body.response_format = { type: "json_schema", json_schema: { name: "answer", schema, strict: true } };
  } else if ($("mode").value === "tools") {
    body.tools = parsedJson("tools", "tools list");
    body.tool_choice = $("tool-choice").value;
  }
  return body;
}

function setBusy(busy) {
  $("conversation").setAttribute("aria-busy", String(busy));
  $("send").disabled = busy;
  $("stop").disabled = !busy;
}

async function send(event) {
  event.preventDefault();
  const text = $("message").value;
  if (running || !text.trim()) return;
  const call = pendingCall();
  const message = call ? { role: "tool", tool_call_id: call.id, content: text } : { role: "user", content: text };
  let body;
  try {
    body = request(message);
  } catch (error) {
    showError(error.message);
    return;
  }
  showError("");
  $("message").value = "";
  $("message").focus(); // Escape stops the answer from here, Ctrl+Enter sends the next message
  history.push(message);
  const asked = turn(message.role, text);
  const answer = await stream(body, turn("assistant", ""));
  if (answer) {
    history.push(answer);
  } else {
    history.pop(); // nothing came back: the turn is taken back, to send again
    asked.remove();
    $("message").value = text;
  }
  showComposer();
}

// Stream one answer into `item`; the assistant message it made, or null if it made none.
async function stream(body, item) {
  const controller = new AbortController();
  running = controller;
  setBusy(true);
  const started = performance.now();
  const text = item.querySelector(".text");
  let first = null;
  let usage = null;
  let done = false;
  let content = "";
  let timing = [];
  const calls = [];
  const onEvent = (data) => {
    if (data === "[DONE]") {
      done = true;
      return;
    }
    const chunk = JSON.parse(data);
    if (chunk.error) throw new Error(`The answer failed: ${chunk.error.message}`);
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices || []) {
      const delta = choice.delta || {};
      if (delta.content) {
        first ??= performance.now();
        content += delta.content;
        text.textContent = content;
      }
      for (const piece of delta.tool_calls || []) {
        first ??= performance.now();
        const call = (calls[piece.index] ??= { id: piece.id, type: "function", function: { name: "", arguments: "" } });
        call.function.name += (piece.function && piece.function.name) || "";
        call.function.arguments += (piece.function && piece.function.arguments) || "";
        showCalls(item, calls);
      }
    }
  };
  try {
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const response = await api("chat/completions", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await failure(response));
    timing = serverTiming(response.headers.get("Server-Timing"));
    const parser = new EventParser(onEvent);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) parser.push(read.value);
    if (!done) throw new Error("The answer ended before it was complete (the connection closed).");
  } catch (error) {
    if (error.name !== "AbortError") showError(error.message);
    else if (content || calls.length) item.append(Object.assign(document.createElement("p"), STOPPED));
  } finally {
    controller.abort(); // a failed answer's connection is closed too, so the server stops generating it
    running = null;
    setBusy(false);
  }
  const ended = performance.now();
  const stats = [];
  if (usage) stats.push(["tokens", `${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion`]);
  if (first !== null) stats.push(["first token", `${Math.round(first - started)} ms`]);
  const after = usage ? usage.completion_tokens - 1 : 0;
  // Decoding speed: the tokens after the first, over the time from the first to the end.
  if (first !== null && after > 0 && ended > first) {
    stats.push(["speed", `${(after / ((ended - first) / 1000)).toFixed(1)} tokens/s`]);
  }
  if (timing.length) stats.push(["server", timing.join(", ")]);
  if (stats.length) showStats(item, stats);
  if (!content && !calls.length) {
    item.remove();
    return null;
  }
  const answer = { role: "assistant", content: content || null };
  if (calls.length) answer.tool_calls = calls.filter(Boolean);
  return answer;
}

function stop() {
  if (running) running.abort();
}

function clearConversation() {
  stop();
  history.length = 0;
  $("conversation").replaceChildren();
  showError("");
  showComposer();
}

$("key-form").addEventListener("submit", useKey);
$("forget-key").addEventListener("click", forgetKey);
$("mode").addEventListener("change", showMode);
$("composer").addEventListener("submit", send);
$("stop").addEventListener("click", stop);
$("clear").addEventListener("click", clearConversation);
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("composer").requestSubmit();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") stop();
});
showMode();
showKeyState();
if (apiKey()) loadModels().catch((error) => showError(error.message));
