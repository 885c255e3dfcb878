// The conversation's pieces as the page shows them: a turn, a tool call as it streams, an answer's figures.
// Only text nodes are written (textContent), never HTML, so nothing the model says can become markup.

export function turn(role, text) {
  const item = document.createElement("li");
  item.className = `turn ${role}`;
  const label = document.createElement("span");
  label.className = "role";
  label.textContent = role;
  const body = document.createElement("p");
  body.className = "text";
  body.textContent = text;
  item.append(label, body);
  document.getElementById("conversation").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

export function showCalls(item, calls) {
  let list = item.querySelector(".calls");
  if (!list) {
    list = document.createElement("ul");
    list.className = "calls";
    list.setAttribute("aria-label", "Tool calls");
    item.append(list);
  }
  list.replaceChildren(
    ...calls.filter(Boolean).map((call) => {
      const entry = document.createElement("li");
      entry.className = "call";
      const code = document.createElement("pre");
      code.textContent = `${call.function.name}(${call.function.arguments})`;
      entry.append(code);
      return entry;
    }),
  );
}

// Server-Timing: `name;dur=12.3;desc="..."` entries, comma-separated (commas inside quotes are not separators).
export function serverTiming(header) {
  if (!header) return [];
  return (header.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) || []).map((entry) => {
    const [name, ...params] = entry.split(";").map((part) => part.trim());
    const values = Object.fromEntries(
      params.map((param) => {
        const [key, ...rest] = param.split("=");
        return [key.trim().toLowerCase(), rest.join("=").trim().replace(/^"|"$/g, "")];
      }),
    );
    const duration = values.dur ? ` ${Number(values.dur).toFixed(1)} ms` : "";
    return `${values.desc || name}${duration}`;
  });
}

export function showStats(item, stats) {
  const list = document.createElement("dl");
  list.className = "stats";
  for (const [name, value] of stats) {
    const term = document.createElement("dt");
    term.textContent = name;
    const detail = document.createElement("dd");
    detail.textContent = value;
    detail.dataset.stat = name;
    const group = document.createElement("div");
    group.append(term, detail);
    list.append(group);
  }
  item.append(list);
}
