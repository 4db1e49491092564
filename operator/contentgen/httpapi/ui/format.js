// Values as a person reads them: dates, dollars, sizes, durations, shares.

export function when(text) {
  return text ? text.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC") : "-";
}

export function usd(value) {
  if (value === null || value === undefined) return "-";
  if (value > 0 && value < 0.00005) return "under $0.0001"; // something costs: not "$0.0000"
  return `$${Number(value).toFixed(value && Math.abs(value) < 0.1 ? 4 : 2)}`;
}

export function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = size || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

export function clock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${m}:${s}` : `${m}:${s}`;
}

export function num(value) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(2);
}

export function share(value) {
  return value === null || value === undefined ? "-" : `${Math.round(Number(value) * 100)} %`;
}

// A count and its noun as a person says them: "1 version", "2 versions", "1 person", "3 people"
// (api/words.py says them so in Python). `many`: the plural where adding an s would be wrong.
const IRREGULAR = { person: "people" };

export function counted(count, noun, many) {
  if (count === 1) return `${count} ${noun}`;
  const words = noun.split(" ");
  const last = words.pop();
  const regular = /[^aeiou]y$/.test(last) ? `${last.slice(0, -1)}ies` : /(s|x|ch|sh)$/.test(last) ? `${last}es` : `${last}s`;
  const plural = many || [...words, IRREGULAR[last] || regular].join(" ");
  return `${count} ${plural}`;
}
