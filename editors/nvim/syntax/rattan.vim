" Vim syntax for Rattan topologies (.rtn): the highlighting used when no tree-sitter parser is
" installed (and in Vim). The tokens follow grammar/rtn.lark.
if exists('b:current_syntax')
  finish
endif

syntax case match
syntax iskeyword @,48-57,_

syntax keyword rattanKeyword let endpoints at every for
syntax keyword rattanImport import as
syntax keyword rattanBoolean true false
syntax keyword rattanTodo contained TODO FIXME XXX NOTE

syntax match rattanComment "#.*$" contains=rattanTodo,@Spell
syntax region rattanString start=+"+ skip=+\\.+ end=+"+ oneline contains=rattanEscape
syntax match rattanEscape contained +\\.+

" A number, and a number glued to its unit: `1000`, `0.25`, `2e3`, `10ms`, `1.5Mbps`, `5µs`, `1%`,
" `10Mbit/s`.
syntax match rattanNumber "\<\d\+\(\.\d\+\)\=\([eE][+-]\=\d\+\)\=\>"
syntax match rattanQuantity "\<\d\+\(\.\d\+\)\=\([eE][+-]\=\d\+\)\=\([eE][+-]\=\d\)\@!\ze[A-Za-z_µμ%]" nextgroup=rattanUnit
syntax match rattanUnit contained "[A-Za-z_µμ%][A-Za-z0-9_]*\(/[sS]\([eE][cC]\)\=\>\)\="
syntax match rattanOperator "[-+*/=]" contains=NONE
syntax match rattanArrow "->"

" `cell type NAME(`, `cell NAME: TYPE`, `channel NAME`, and an inline cell `TYPE {`.
syntax match rattanCell "\<cell\>" nextgroup=rattanTypeKeyword,rattanCellName skipwhite
syntax keyword rattanTypeKeyword contained type nextgroup=rattanTypeName skipwhite
syntax match rattanTypeName contained "\<\h\w*\>"
syntax match rattanCellName contained "\<\h\w*\>" nextgroup=rattanColon skipwhite
syntax match rattanColon contained ":" nextgroup=rattanCellType skipwhite
syntax match rattanCellType contained "\<\h\w*\(\.\h\w*\)*\>"
syntax match rattanChannel "\<channel\>" nextgroup=rattanChannelName skipwhite
syntax match rattanChannelName contained "\<\h\w*\>"
syntax match rattanInline "\<\h\w*\(\.\h\w*\)*\ze\s*{"
syntax match rattanField "\<\h\w*\ze\s*=[^=]"
syntax match rattanPort "\[\d\+\]"hs=s+1,he=e-1

highlight default link rattanKeyword Keyword
highlight default link rattanCell Keyword
highlight default link rattanChannel Keyword
highlight default link rattanTypeKeyword Keyword
highlight default link rattanImport Include
highlight default link rattanBoolean Boolean
highlight default link rattanComment Comment
highlight default link rattanTodo Todo
highlight default link rattanString String
highlight default link rattanEscape SpecialChar
highlight default link rattanNumber Number
highlight default link rattanQuantity Number
highlight default link rattanUnit Special
highlight default link rattanArrow Operator
highlight default link rattanOperator Operator
highlight default link rattanTypeName Type
highlight default link rattanCellType Type
highlight default link rattanInline Type
highlight default link rattanCellName Identifier
highlight default link rattanChannelName Identifier
highlight default link rattanField Identifier
highlight default link rattanPort Number

let b:current_syntax = 'rattan'
