// Server-sent events as the WHATWG HTML standard parses them ("Interpreting an event stream"), for a fetch body:
// lines end with CRLF, LF or CR; a blank line dispatches the event; its data lines are joined with "\n"; a line
// starting with ":" is a comment; a field's value loses one leading space; an event cut off by the end is dropped.

export class EventParser {
  /** @param {(data: string, type: string) => void} onEvent called with each event's data and type */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.data = "";
    this.type = "";
    this.afterCR = false; // the last chunk ended with CR: a LF starting the next one ends no second line
  }

  /** Feed decoded text, in chunks of any size. */
  push(text) {
    if (this.afterCR && text.startsWith("\n")) text = text.slice(1);
    this.afterCR = text.endsWith("\r");
    this.buffer += text;
    const ends = /\r\n|\r|\n/g;
    let start = 0;
    for (let end = ends.exec(this.buffer); end !== null; end = ends.exec(this.buffer)) {
      const line = this.buffer.slice(start, end.index);
      start = ends.lastIndex;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data += value + "\n";
    else if (field === "event") this.type = value;
  }

  dispatch() {
    const data = this.data;
    const type = this.type || "message";
    this.data = "";
    this.type = "";
    if (data === "") return;
    this.onEvent(data.slice(0, -1), type);
  }
}
