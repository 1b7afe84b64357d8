#!/usr/bin/env node
/**
 * The longest files and functions of src/ (lines, blank lines and comments included), read
 * with the TypeScript compiler's parser. Usage: node scripts/code-stats.mjs [--top N] [--json]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
const files = (d) => readdirSync(d).flatMap((n) => (statSync(path.join(d, n)).isDirectory() ? files(path.join(d, n)) : n.endsWith('.ts') ? [path.join(d, n)] : []));

export function codeStats() {
  const fileRows = [];
  const fnRows = [];
  for (const f of files(root)) {
    const text = readFileSync(f, 'utf8');
    const rel = path.relative(root, f);
    fileRows.push({ file: rel, lines: text.split('\n').length });
    const sf = ts.createSourceFile(f, text, ts.ScriptTarget.ES2022, true);
    const line = (p) => sf.getLineAndCharacterOfPosition(p).line;
    const nameOf = (n) => {
      if (n.name && ts.isIdentifier(n.name)) return n.name.text;
      if (ts.isVariableDeclaration(n.parent) && ts.isIdentifier(n.parent.name)) return n.parent.name.text;
      if (ts.isPropertyAssignment(n.parent) && ts.isIdentifier(n.parent.name)) return n.parent.name.text;
      return '(anonymous)';
    };
    const visit = (n) => {
      if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n) || ts.isConstructorDeclaration(n)) && n.body) {
        fnRows.push({ file: rel, name: nameOf(n), line: line(n.getStart()) + 1, lines: line(n.getEnd()) - line(n.getStart()) + 1 });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  fileRows.sort((a, b) => b.lines - a.lines);
  fnRows.sort((a, b) => b.lines - a.lines);
  return { files: fileRows, functions: fnRows };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 5;
  const s = codeStats();
  if (process.argv.includes('--json')) console.log(JSON.stringify({ files: s.files.slice(0, top), functions: s.functions.slice(0, top) }, null, 2));
  else {
    console.log('longest files:');
    for (const r of s.files.slice(0, top)) console.log(`  ${String(r.lines).padStart(5)}  ${r.file}`);
    console.log('longest functions:');
    for (const r of s.functions.slice(0, top)) console.log(`  ${String(r.lines).padStart(5)}  ${r.file}:${r.line} ${r.name}`);
  }
}
