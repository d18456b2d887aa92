"""Vocabulary of the ``rules`` classifier: phrases per complexity tier, task type and step marker.

Each entry is one phrase of lowercase words, letters, digits or ``_`` only, with ``{a,b}``
alternatives expanded into every combination: ``explain{,s,ed,ing}`` is four words,
``what {is,are}`` two phrases. The classifier turns punctuation into spaces before matching,
so write ``what s`` for "what's", ``trade off`` for "trade-off" and ``tl dr`` for "tl;dr".
Entries are matched as whole words: ``define`` never matches inside "redefine".
"""

from __future__ import annotations

from collections.abc import Mapping

from modelrouter import Complexity, TaskType

__all__ = ["MULTI_STEP_PHRASES", "TASK_PATTERNS", "TASK_PRIORITY", "TIER_PATTERNS"]

_LANGUAGES = (
    "arabic,chinese,dutch,french,german,greek,hebrew,hindi,italian,japanese,korean,"
    "mandarin,polish,portuguese,russian,spanish,swedish,turkish,ukrainian,vietnamese"
)

TIER_PATTERNS: Mapping[Complexity, tuple[str, ...]] = {
    Complexity.SIMPLE: (
        "what {s,is,are,was,were}",
        "who {s,is,was,are,were}",
        "when {is,was,did,does,will}",
        "where {is,are,was,can,do,does}",
        "how {many,much,old,far,tall,long}",
        "define",
        "{definition,meaning} of",
        "{syn,ant}onym{,s} {of,for}",
        "capital of",
        "spell",
        "is it true",
        "{yes or no,true or false}",
        "convert",
        "translate",
    ),
    Complexity.MODERATE: (
        "explain{,s,ed,ing}",
        "describ{e,es,ed,ing}",
        "compar{e,es,ed,ing,ison}",
        "contrast",
        "difference{,s} between",
        "how {does,do,did,can,should,would}",
        "why {is,are,was,were}",
        "summari{s,z}{e,es,ed,ing,ation}",
        "pros and cons",
        "outline",
        "rewrite",
        "paraphrase",
        "classify",
        "example{,s} of",
        "walk me through",
        "overview of",
        "{,dis}advantage{,s}",
        "recommend{,s,ation,ations}",
    ),
    Complexity.COMPLEX: (
        "analy{s,z}{e,es,ed,ing,is}",
        "analyses",
        "evaluat{e,es,ed,ing,ion}",
        "assess{,ment}",
        "critiqu{e,ing}",
        "critically",
        "why {does,do,did,would,might}",
        "{trade off,trade offs,tradeoff,tradeoffs}",
        "design{,s,ed,ing}",
        "architect{,ure}",
        "refactor{,ing}",
        "debug{,ging}",
        "optimi{s,z}{e,es,ed,ing,ation}",
        "strateg{y,ies,ic}",
        "in {depth,detail}",
        "comprehensive",
        "root cause",
        "diagnos{e,is}",
        "troubleshoot{,ing}",
        "scalab{le,ility}",
        "investigat{e,ion}",
        "synthesi{s,z}e",
    ),
    Complexity.EXPERT: (
        "prov{e,es,en,ing}",
        "proof{,s}",
        "deriv{e,es,ed,ing,ation}",
        "{theorem,lemma}{,s}",
        "corollary",
        "rigorous{,ly}",
        "formal{,ly} {proof,verification,specification,semantics,model}",
        "first principles",
        "novel {algorithm,approach,method,architecture}",
        "state of the art",
        "np {hard,complete}",
        "{lock free,lockfree}",
        "race condition{,s}",
        "distributed consensus",
        "byzantine",
        "differential equation{,s}",
        "stochastic",
        "eigen{value,values,vector,vectors}",
        "asymptotic{,ally}",
        "cryptanalysis",
        "peer review{,ed}",
    ),
}

TASK_PATTERNS: Mapping[TaskType, tuple[str, ...]] = {
    TaskType.CODE: (
        "{code,coding}",
        "{function,method,script,api,endpoint,variable,exception,bug}{,s}",
        "implement{,s,ed,ing,ation}",
        "debug{,ging}",
        "compil{e,es,ed,er,ing,ation}",
        "{stack trace,stacktrace,traceback,segfault,syntax}",
        "{regex,regexp,sql}",
        "{python,javascript,typescript,java,rust,golang,kotlin,cpp,html,css,bash}",
        "refactor{,ing}",
        "unit test{,s}",
        "{algorithm,program}{,s}",
        "programming",
        "{docker,kubernetes,git}",
        "data structure{,s}",
        "{queue,linked list,hash map,hash table,binary tree}{,s}",
        "{lock free,lockfree,mutex,mutexes,concurrency,multithreaded,multithreading}",
    ),
    TaskType.TRANSLATION: (
        "translat{e,es,ed,ing,ion}",
        f"{{into,to}} {{english,{_LANGUAGES}}}",
        # "in english" is left out: "explain it in plain english" asks for no translation.
        f"in {{{_LANGUAGES}}}",
        "how do {you,i} say",
    ),
    TaskType.SUMMARIZATION: (
        "summari{s,z}{e,es,ed,ing,ation}",
        "summary",
        "{tl dr,tldr}",
        "key {points,takeaways,findings}",
        "main {points,ideas}",
        "{condense,recap,gist,shorten}",
        "in a nutshell",
        "{brief,short} overview",
        "boil {it,this} down",
    ),
    TaskType.EXTRACTION: (
        "extract{,s,ed,ing,ion}",
        "pull out",
        "list {all,every,each}",
        "find {all,every}",
        "identify {all,every,each}",
        "pars{e,es,ing}",
        "named entit{y,ies}",
        "entities",
        "{json,csv}",
        "structured data",
        "key value",
        "from {this,the following} {text,document,email,passage,table,page,invoice}",
        "tabulate",
    ),
    TaskType.REASONING: (
        "prov{e,es,ing}",
        "proof{,s}",
        "deriv{e,es,ed,ing,ation}",
        "deduc{e,es,ed,ing,tion}",
        "infer{,s,red,ring,ence}",
        "logic{,al,ally}",
        "{puzzle,riddle,syllogism,equation}{,s}",
        "calculat{e,es,ed,ing,ion}",
        "solv{e,es,ed,ing}",
        "probability",
        "math{,s,ematics,ematical}",
        "think through",
        "reason{,ing} about",
        "figure out",
        "how many ways",
        "should i {choose,use,pick}",
    ),
    TaskType.CREATIVE: (
        "{poem,poems,poetry,sonnet,haiku,limerick,lyrics,verse}",
        "{song,story,joke,slogan,tagline,character}{,s}",
        "{stories,fiction,fairy tale,screenplay,narrative,plot,essay}",
        "brainstorm{,ing}",
        "imagine",
        "creative{,ly}",
    ),
    TaskType.QA: (
        "what {s,is,are,was,were,does,do,did}",
        "who {is,was,are,were,invented,wrote,discovered}",
        "when {is,was,did,were,will}",
        "where {is,are,was,were,can,do,does}",
        "which",
        "how {many,much,old,far,tall,long,big}",
        "why {is,are,was,were,do,does,did}",
        "is it true",
        "define",
        "{definition,meaning,capital} of",
    ),
    TaskType.CHAT: (
        "{hi,hello,hey,howdy}",
        "{thanks,thank you}",
        "good {morning,afternoon,evening,night}",
        "how are you",
        "nice to meet you",
        "{bye,goodbye,lol}",
    ),
}

# Each occurrence is one marker; "first ... then" and numbered lines are counted separately.
MULTI_STEP_PHRASES: tuple[str, ...] = (
    "step by step",
    "step {1,2,3,4,5,6,7,8,9}",
    "and then",
    "{after that,afterwards,finally}",
)

# Tie-break between task types with equal match counts: the type that names a concrete
# deliverable beats the generic framing around it ("what does this function return?" is
# CODE, "summarize this story" is SUMMARIZATION). CHAT is last because it is the default.
TASK_PRIORITY: tuple[TaskType, ...] = (
    TaskType.CODE,
    TaskType.TRANSLATION,
    TaskType.SUMMARIZATION,
    TaskType.EXTRACTION,
    TaskType.REASONING,
    TaskType.CREATIVE,
    TaskType.QA,
    TaskType.CHAT,
)
