/**
 * Tree-sitter grammar for the Rattan topology language (.rtn).
 *
 * Written from the compiler's own grammar, grammar/rtn.lark, and docs/language.md; the tests
 * (tests/editors/test_tree_sitter.py) parse every example and every code block of the docs with
 * both parsers and fail where they disagree about whether a file has a syntax error.
 *
 * Statements end at a newline. The external scanner (src/scanner.c) plays the part of the
 * compiler's post-lexer: a newline whose next line starts with `->` continues the chain above
 * (it becomes `_continuation`, an extra), any other newline is a `_newline` token. It also
 * lexes names, so that a keyword is never taken for a name (`let at = 1` is an error, as in the
 * compiler).
 */

// Items inside `{ }`, `[ ]` and a parameter list's `( )`: separated by commas or newlines, with
// separators allowed before the first item and after the last (the compiler's `_sep`).
const items = ($, rule) => seq(
  repeat($._sep),
  repeat(seq(rule, repeat1($._sep))),
  optional(rule),
);

// A file or a `{ }` body: statements, each ended by a newline (the last may end the file or body).
const statements = $ => seq(
  repeat(choice($._newline, seq($._statement, $._newline))),
  optional($._statement),
);

const NUMBER = /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/;
// A unit's name (and the prefix of a bit or byte rate's): not `e` or `E` followed by a digit
// (tree-sitter's lexer has no lookahead).
const UNIT = /([A-DF-Za-df-z_%µμ][A-Za-z0-9_]*|[eE]([A-Za-z_][A-Za-z0-9_]*)?)/;
const RATE_PREFIX = /([A-DF-Za-df-z_µμ][A-Za-z0-9_]*|[eE]([A-Za-z_][A-Za-z0-9_]*)?)/;

module.exports = grammar({
  name: 'rattan',

  externals: $ => [$._newline, $._continuation, $.identifier],

  extras: $ => [/[ \t\f]/, /\\\r?\n/, $.comment, $._continuation],

  supertypes: $ => [$._statement, $._expression],

  rules: {
    source_file: $ => statements($),

    _statement: $ => choice(
      $.let_statement,
      $.import_statement,
      $.cell_type_definition,
      $.channel_definition,
      $.endpoints_declaration,
      $.cell_declaration,
      $.chain,
      $.at_statement,
      $.every_statement,
    ),

    let_statement: $ => seq('let', field('name', $.identifier), '=', field('value', $._expression)),

    import_statement: $ => seq(
      'import', field('path', $.string),
      optional(seq('as', field('alias', $.identifier))),
    ),

    cell_type_definition: $ => seq(
      'cell', 'type', field('name', $.identifier),
      field('parameters', $.parameter_list),
      field('body', $.body),
    ),

    parameter_list: $ => seq('(', items($, $.parameter), ')'),

    parameter: $ => seq(
      field('name', $.identifier), ':', field('type', $.identifier),
      optional(seq('=', field('default', $._expression))),
    ),

    channel_definition: $ => seq('channel', field('name', $.identifier), field('body', $.body)),

    body: $ => seq('{', statements($), '}'),

    endpoints_declaration: $ => seq(
      'endpoints', field('name', $.identifier), repeat(seq(',', field('name', $.identifier))),
    ),

    cell_declaration: $ => seq(
      'cell', field('name', $.identifier), ':', field('type', $.dotted_name),
      optional(field('arguments', $.record_body)),
    ),

    chain: $ => seq($._element, repeat1(seq('->', $._element))),

    _element: $ => choice($.reference, $.inline_cell),

    // A cell, endpoint or `in`/`out`, with an output port: `back[0]`.
    reference: $ => seq(field('name', $.dotted_name), optional(field('port', $.port))),

    // An anonymous cell: `delay { delay = 10ms }`.
    inline_cell: $ => seq(field('type', $.dotted_name), field('arguments', $.record_body)),

    port: $ => seq('[', $.number, ']'),

    at_statement: $ => seq('at', field('time', $._expression), field('body', $.assignment_block)),

    every_statement: $ => seq(
      'every', field('period', $._expression),
      'for', field('duration', $._expression),
      field('body', $.assignment_block),
    ),

    assignment_block: $ => seq('{', items($, $.assignment), '}'),

    assignment: $ => seq(field('target', $.dotted_name), '=', field('value', $._expression)),

    record_body: $ => seq('{', items($, $.field), '}'),

    field: $ => seq(field('name', $.identifier), '=', field('value', $._expression)),

    _sep: $ => choice(',', $._newline),

    _expression: $ => choice(
      $.binary_expression,
      $.unary_expression,
      $.quantity,
      $.number,
      $.string,
      $.true,
      $.false,
      $.name,
      $.record,
      $.parenthesized_expression,
      $.list,
    ),

    binary_expression: $ => choice(
      prec.left(1, seq(field('left', $._expression), field('operator', choice('+', '-')), field('right', $._expression))),
      prec.left(2, seq(field('left', $._expression), field('operator', choice('*', '/')), field('right', $._expression))),
    ),

    unary_expression: $ => prec(3, seq(field('operator', '-'), field('operand', $._expression))),

    name: $ => $.dotted_name,

    // `x { ... }` after `at x` is a record, as in the compiler, whose LALR parser shifts `{`.
    record: $ => prec(1, seq(field('kind', $.dotted_name), field('fields', $.record_body))),

    parenthesized_expression: $ => seq('(', $._expression, ')'),

    list: $ => seq('[', items($, $._expression), ']'),

    dotted_name: $ => seq($.identifier, repeat(seq('.', $.identifier))),

    true: _ => 'true',
    false: _ => 'false',

    number: _ => token(NUMBER),

    // A number glued to its unit: `10ms`, `1.5Mbps`, `5µs`, `1%`, `10Mbit/s`, `64KB/s`. A unit never
    // starts like an exponent (`2e3` is a number, as in the compiler): one starting with `e` has no
    // digit after it, so the number's token, longer, wins.
    quantity: _ => token(prec(2, choice(
      seq(NUMBER, UNIT),
      seq(NUMBER, optional(RATE_PREFIX), /([bB]its?|[bB]|[bB]ytes?)\/([sS]|[sS][eE][cC])/),
    ))),

    string: _ => token(seq('"', repeat(choice(/[^"\\\r\n]/, /\\./)), '"')),

    comment: _ => token(seq('#', /[^\r\n]*/)),
  },
});
