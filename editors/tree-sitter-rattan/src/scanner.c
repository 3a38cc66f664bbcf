// External scanner of the Rattan grammar: newlines and names.
//
// The compiler's post-lexer (rattan/syntax/parser.py) drops a newline when the next token is
// `->`, so that a chain continues on the next line; comments and blank lines in between do not
// count. Here such a newline is a `_continuation` (an extra, skipped by the parser) and any
// other one a `_newline`, the statement and item separator.
//
// Names are lexed here too so that a keyword is never a name: tree-sitter's own keyword
// extraction would read `at` in `let at = 1` as a name, since no keyword can follow `let`.

#include <stdbool.h>
#include <string.h>
#include "tree_sitter/parser.h"

enum TokenType { NEWLINE, CONTINUATION, IDENTIFIER };

static const char *const KEYWORDS[] = {
    "let", "import", "as", "cell", "type", "channel", "endpoints", "at", "every", "for", "true",
    "false",
};

#define MAX_NAME 64  // longer than every keyword: a longer name is never one

void *tree_sitter_rattan_external_scanner_create(void) { return NULL; }
void tree_sitter_rattan_external_scanner_destroy(void *payload) { (void)payload; }
unsigned tree_sitter_rattan_external_scanner_serialize(void *payload, char *buffer) {
    (void)payload;
    (void)buffer;
    return 0;
}
void tree_sitter_rattan_external_scanner_deserialize(void *payload, const char *buffer,
                                                     unsigned length) {
    (void)payload;
    (void)buffer;
    (void)length;
}

static bool is_space(int32_t c) { return c == ' ' || c == '\t' || c == '\f'; }
static bool is_name_start(int32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(int32_t c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// After a newline: is the next token, past blank lines, comments and `\` line joins, `->`?
static bool arrow_follows(TSLexer *lexer) {
    for (;;) {
        int32_t c = lexer->lookahead;
        if (is_space(c) || c == '\r' || c == '\n') {
            lexer->advance(lexer, false);
        } else if (c == '#') {
            while (lexer->lookahead != '\n' && !lexer->eof(lexer)) lexer->advance(lexer, false);
        } else if (c == '\\') {
            lexer->advance(lexer, false);
            if (lexer->lookahead == '\r') lexer->advance(lexer, false);
            if (lexer->lookahead != '\n') return false;
            lexer->advance(lexer, false);
        } else if (c == '-') {
            lexer->advance(lexer, false);
            return lexer->lookahead == '>';
        } else {
            return false;
        }
    }
}

static bool scan_newline(TSLexer *lexer, const bool *valid_symbols) {
    if (lexer->lookahead == '\r') lexer->advance(lexer, false);
    if (lexer->lookahead != '\n') return false;
    lexer->advance(lexer, false);
    lexer->mark_end(lexer);  // the token is this one newline; what follows is only looked at
    if (arrow_follows(lexer)) {
        if (!valid_symbols[CONTINUATION]) return false;
        lexer->result_symbol = CONTINUATION;
        return true;
    }
    if (!valid_symbols[NEWLINE]) return false;
    lexer->result_symbol = NEWLINE;
    return true;
}

static bool scan_identifier(TSLexer *lexer) {
    char name[MAX_NAME + 1];
    unsigned n = 0;
    while (is_name_char(lexer->lookahead)) {
        if (n < MAX_NAME) name[n] = (char)lexer->lookahead;
        n++;
        lexer->advance(lexer, false);
    }
    lexer->mark_end(lexer);
    if (n <= MAX_NAME) {
        name[n] = '\0';
        for (unsigned i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++) {
            if (strcmp(name, KEYWORDS[i]) == 0) return false;  // the grammar's own token
        }
    }
    lexer->result_symbol = IDENTIFIER;
    return true;
}

bool tree_sitter_rattan_external_scanner_scan(void *payload, TSLexer *lexer,
                                              const bool *valid_symbols) {
    (void)payload;
    while (is_space(lexer->lookahead)) lexer->advance(lexer, true);
    int32_t c = lexer->lookahead;
    if (c == '\n' || c == '\r') {
        if (valid_symbols[NEWLINE] || valid_symbols[CONTINUATION]) {
            return scan_newline(lexer, valid_symbols);
        }
        return false;
    }
    if (is_name_start(c) && valid_symbols[IDENTIFIER]) return scan_identifier(lexer);
    return false;
}
