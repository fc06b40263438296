"""Demo data: a realistic funnel, generated through the one batch path.

`generate` invents accounts and their contacts (industries, company sizes, countries and
territories), six months of what they did (web visits, emails, forms, downloads, webinars,
demo requests; some as anonymous visitors first), and feeds it through `ingest` in batches
that hold every event of a group of leads, so the playbook scores and qualifies them exactly
as it would real traffic. A second pass per batch plays sales: each lead handed off is given
a rep of its territory, who accepts it, qualifies it, works the opportunity and wins or loses
it -- or hands it back or disqualifies it -- through the domain's `move`.

The world has a ground truth the playbook only approximates: a lead's *quality* (industry,
company size, seniority, free-mail or not) and its *intent* drive both what it does and how
likely sales is to win it, so a predictive model can learn outcomes from fields and behaviour.
Everything comes from one `random.Random(seed)`: the same seed and `now` give the same data.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from leadrelay.domain.deals import reassign
from leadrelay.domain.errors import DomainError
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import Event, Lead, StageChange, company_domain
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.scoring import engagement_at
from leadrelay.domain.sla import Sla
from leadrelay.services.handoff import after_moves
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

LEADS_PER_BATCH = 1000  # every event of these leads goes through one ingest call
HISTORY_DAYS = 182
SECOND = 1.0
HOUR = 3600.0
DAY = 86400.0


class DemoNeedsEmptyDatabase(DomainError):
    code = "demo_needs_empty_database"


@dataclass
class DemoSummary:
    leads: int
    events: int
    accounts: int
    seconds: float
    current: dict[str, int]  # stage id -> leads currently in it
    reached: dict[str, int]  # funnel stage id -> leads whose highest stage reached is at least that stage
    examples: list[str]  # a few interesting lead emails (a customer, an MQL, a recycled one, ...)


# --- the demo world -----------------------------------------------------------------------


@dataclass(frozen=True)
class Rep:
    email: str
    name: str
    team: str
    territory: str
    skill: float  # how much better (log-odds) than average this rep closes
    response_hours: float  # how long this rep typically takes to accept or hand back a new MQL


TERRITORIES: dict[str, tuple[tuple[str, float], ...]] = {  # territory -> (country, weight)
    "North America": (("US", 0.86), ("CA", 0.14)),
    "EMEA": (("GB", 0.25), ("DE", 0.22), ("FR", 0.14), ("NL", 0.1), ("SE", 0.07), ("ES", 0.08),
             ("IE", 0.05), ("CH", 0.05), ("AE", 0.04)),
    "APAC": (("AU", 0.3), ("JP", 0.2), ("SG", 0.18), ("IN", 0.24), ("NZ", 0.08)),
    "Latin America": (("BR", 0.45), ("MX", 0.35), ("AR", 0.1), ("CL", 0.1)),
}
TERRITORY_WEIGHTS = {"North America": 0.42, "EMEA": 0.32, "APAC": 0.16, "Latin America": 0.10}

DEMO_REPS: tuple[Rep, ...] = (
    Rep("maya.johnson@sales.leadrelay.example", "Maya Johnson", "Americas", "North America", 0.35, 0.8),
    Rep("daniel.okafor@sales.leadrelay.example", "Daniel Okafor", "Americas", "North America", 0.0, 3.0),
    Rep("ethan.brooks@sales.leadrelay.example", "Ethan Brooks", "Americas", "North America", -0.3, 9.0),
    Rep("sofia.ramirez@sales.leadrelay.example", "Sofía Ramírez", "Americas", "Latin America", 0.15, 2.0),
    Rep("lena.fischer@sales.leadrelay.example", "Lena Fischer", "EMEA", "EMEA", 0.2, 1.5),
    Rep("tom.wright@sales.leadrelay.example", "Tom Wright", "EMEA", "EMEA", -0.15, 14.0),
    Rep("amelie.laurent@sales.leadrelay.example", "Amélie Laurent", "EMEA", "EMEA", 0.05, 4.0),
    Rep("kenji.sato@sales.leadrelay.example", "Kenji Sato", "APAC", "APAC", 0.1, 2.0),
    Rep("priya.nair@sales.leadrelay.example", "Priya Nair", "APAC", "APAC", -0.1, 6.0),
)
DEMO_TEAMS: dict[str, tuple[Rep, ...]] = {
    team: tuple(rep for rep in DEMO_REPS if rep.team == team) for team in ("Americas", "EMEA", "APAC")
}
REPS_BY_EMAIL = {rep.email: rep for rep in DEMO_REPS}
REPS_BY_TERRITORY: dict[str, tuple[Rep, ...]] = {
    territory: tuple(rep for rep in DEMO_REPS if rep.territory == territory) for territory in TERRITORIES
}

# industry -> (weight, quality: how well the product really sells there, company-name words)
INDUSTRIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "software": (0.22, 0.9, ("Software", "Labs", "Cloud", "Systems", "AI", "Data")),
    "fintech": (0.12, 1.0, ("Pay", "Capital", "Finance", "Ledger", "Bank")),
    "healthcare": (0.12, 0.75, ("Health", "Care", "Medical", "Clinics", "Bio")),
    "manufacturing": (0.14, 0.65, ("Industries", "Manufacturing", "Machines", "Components")),
    "retail": (0.12, 0.4, ("Retail", "Stores", "Goods", "Market", "Shop")),
    "education": (0.10, 0.2, ("Academy", "Learning", "School", "Education")),
    "government": (0.06, 0.3, ("Agency", "Council", "Authority")),
    "other": (0.12, 0.3, ("Group", "Partners", "Consulting", "Services")),
}
# company size bands: (low, high, weight, quality)
SIZES = ((2, 10, 0.2, 0.1), (11, 50, 0.28, 0.35), (51, 200, 0.25, 0.65), (201, 1000, 0.16, 0.9),
         (1001, 5000, 0.08, 1.0), (5001, 50000, 0.03, 0.8))
# seniority -> (weight, quality, titles)
TITLES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "decision maker": (0.2, 0.95, (
        "CEO", "Founder", "Co-Founder", "Chief Marketing Officer", "Chief Technology Officer", "VP of Marketing",
        "VP Sales", "Head of Growth", "Head of Operations", "Director of Marketing", "IT Director",
        "Director of Sales Operations", "Vice President, Revenue")),
    "manager": (0.3, 0.6, (
        "Marketing Manager", "Sales Manager", "Product Manager", "Engineering Manager", "IT Manager",
        "Operations Manager", "Demand Generation Manager", "Account Manager")),
    "individual": (0.5, 0.3, (
        "Software Engineer", "Marketing Specialist", "Data Analyst", "Sales Representative", "Consultant",
        "Designer", "Data Scientist", "Business Analyst", "Content Writer", "Marketing Coordinator")),
}
STUDENT_TITLES = ("Student", "PhD Student", "MBA Student", "Graduate Student")
COMPETITOR_DOMAINS = ("competitor.example", "rival.example")
FREE_MAIL = (("gmail.com", 0.5), ("yahoo.com", 0.12), ("hotmail.com", 0.12), ("outlook.com", 0.16),
             ("icloud.com", 0.05), ("proton.me", 0.05))
SOURCES = (("organic search", 0.24), ("paid search", 0.14), ("social", 0.1), ("referral", 0.08),
           ("webinar", 0.1), ("content", 0.13), ("event", 0.08), ("direct", 0.08), ("partner", 0.05))
PRODUCTS = ("Analytics", "Automation", "Integrations", "Enterprise Suite")
NEEDS = ("replace spreadsheets", "faster lead response", "better attribution", "one funnel report",
         "CRM integration", "sales and marketing alignment")
TIMEFRAMES = ("now", "this quarter", "this year", "later")

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Susan", "Richard", "Jessica", "Joseph", "Sarah", "Thomas", "Karen", "Carlos", "Lucia",
    "Mateo", "Valentina", "Hans", "Anna", "Lukas", "Emma", "Louis", "Chloe", "Lars", "Ingrid", "Pieter",
    "Sanne", "Aarav", "Ananya", "Rohan", "Isha", "Hiroshi", "Yuki", "Wei", "Mei", "Jun", "Hana", "Oliver",
    "Charlotte", "Noah", "Amelia", "Liam", "Olivia", "Omar", "Layla", "Kwame", "Amara", "Diego", "Camila",
    "Felix", "Clara", "Sven", "Freya", "Marco", "Giulia", "Tariq", "Zara", "Ethan", "Grace",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Thompson",
    "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Mueller",
    "Schmidt", "Schneider", "Dubois", "Moreau", "Jansen", "DeVries", "Andersson", "Nilsson", "Rossi",
    "Bianchi", "Silva", "Santos", "Oliveira", "Sharma", "Patel", "Gupta", "Iyer", "Tanaka", "Suzuki",
    "Watanabe", "Wang", "Li", "Zhang", "Chen", "Kim", "Park", "Nguyen", "OBrien", "Murphy", "Kelly",
    "Haddad", "Mensah", "Novak",
)
NAME_PREFIXES = (
    "Blue", "North", "Bright", "Iron", "Silver", "Green", "Rapid", "Summit", "Clear", "Red", "Atlas", "Nova",
    "Cedar", "Granite", "Harbor", "Maple", "Orbit", "Pine", "Quantum", "River", "Stone", "True", "Vertex",
    "Wild", "Zen", "Golden", "Swift", "Bold", "Open", "Prime", "Lunar", "Solar", "Coral", "Aspen", "Falcon",
    "Copper", "Echo", "Polar", "Delta", "Sierra",
)
NAME_CORES = (
    "peak", "field", "wave", "bridge", "point", "stack", "works", "forge", "leaf", "line", "path", "rock",
    "gate", "light", "mark", "shore", "spring", "vale", "crest", "hive", "loop", "grid", "port", "sky",
    "bay", "wood", "star", "mill",
)
BLOG_POSTS = (
    "mql-vs-sql", "lead-scoring-101", "sales-marketing-sla", "lead-handoff-checklist", "why-leads-go-cold",
    "funnel-metrics-that-matter", "speed-to-lead", "nurture-sequences", "account-based-marketing",
    "attribution-models", "recycling-leads", "b2b-buyer-journey",
)
DOC_PAGES = ("getting-started", "playbook", "scoring", "api", "integrations/segment", "integrations/crm")
PRODUCT_PAGES = ("/product", "/product/scoring", "/product/handoff", "/product/reports", "/integrations")
CAMPAIGNS = ("newsletter-2025-01", "newsletter-2025-02", "webinar-invite", "ebook-follow-up",
             "product-update", "case-study-fintech", "nurture-1", "nurture-2", "nurture-3", "event-follow-up")
ASSETS = ("ebook-lead-scoring", "guide-sales-marketing-sla", "report-state-of-b2b-funnels",
          "template-handoff-checklist", "whitepaper-attribution")
WEBINARS = ("webinar-speed-to-lead", "webinar-funnel-metrics", "webinar-abm-basics", "webinar-product-tour")
FORMS = ("contact", "newsletter", "ebook", "webinar registration", "pricing question")


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def _shared(**properties: Any) -> dict[str, Any]:
    return properties


# Event properties are shared between events (nothing downstream changes them): one dict per
# distinct value keeps generating 20 million events cheap.
PAGE_PROPS = {
    "home": [_shared(path="/")],
    "pricing": [_shared(path="/pricing"), _shared(path="/pricing/enterprise")],
    "blog": [_shared(path=f"/blog/{slug}") for slug in BLOG_POSTS],
    "docs": [_shared(path=f"/docs/{page}") for page in DOC_PAGES],
    "product": [_shared(path=path) for path in PRODUCT_PAGES],
    "customers": [_shared(path="/customers"), _shared(path="/customers/case-studies")],
    "careers": [_shared(path="/careers"), _shared(path="/careers/open-positions")],
    "about": [_shared(path="/about"), _shared(path="/contact")],
}
PAGE_KINDS = tuple(PAGE_PROPS)
OPEN_PROPS = [_shared(campaign=c) for c in CAMPAIGNS]
CLICK_PROPS = [_shared(campaign=c, url="/blog/" + BLOG_POSTS[i % len(BLOG_POSTS)]) for i, c in enumerate(CAMPAIGNS)]
FORM_PROPS = {form: _shared(form=form) for form in FORMS}
DOWNLOAD_PROPS = [_shared(asset=a) for a in ASSETS]
WEBINAR_PROPS = [_shared(webinar=w) for w in WEBINARS]
DEMO_PROPS = _shared(form="demo")
NO_TRAITS: dict[str, Any] = {}

TOUCHES = ("page", "email_open", "email_click", "form", "download", "webinar")
INTENT_LEVELS = 11


def _touch_weights(intent: float) -> list[float]:
    return _cum([0.56 - 0.1 * intent, 0.22, 0.06 + 0.04 * intent, 0.025 + 0.04 * intent, 0.03 + 0.03 * intent,
                 0.008 + 0.02 * intent])


def _page_weights(intent: float, job_seeker: bool) -> list[float]:
    if job_seeker:
        return _cum([0.15, 0.0, 0.1, 0.0, 0.05, 0.05, 0.6, 0.05])
    return _cum([0.18, 0.04 + 0.3 * intent, 0.3 - 0.1 * intent, 0.1, 0.12 + 0.05 * intent, 0.05 + 0.03 * intent,
                 0.025, 0.04])


TOUCH_CUM = [_touch_weights(level / (INTENT_LEVELS - 1)) for level in range(INTENT_LEVELS)]
PAGE_CUM = [_page_weights(level / (INTENT_LEVELS - 1), False) for level in range(INTENT_LEVELS)]
JOB_PAGE_CUM = _page_weights(0.0, True)


# --- planning one lead ----------------------------------------------------------------------


@dataclass(slots=True)
class _Account:
    domain: str
    company: str
    industry: str
    size: int
    size_quality: float
    territory: str
    country: str


@dataclass(slots=True)
class _Plan:
    """What the generator knows about a lead that the database does not: its ground truth."""

    email: str
    quality: float  # how good a customer it would really be, 0..1
    intent: float  # how much it wants to buy now, 0..1
    fields: dict[str, Any]
    anonymous_first: bool
    demo_request: bool
    first: Event | None = None  # its first known event (ingest ties it to the lead)


@dataclass
class _Names:
    """Unique company domains and names, same sequence for the same random generator."""

    used: dict[str, int] = field(default_factory=dict)

    def company(self, rng: random.Random, industry: str) -> tuple[str, str]:
        prefix, core = rng.choice(NAME_PREFIXES), rng.choice(NAME_CORES)
        suffix = rng.choice(INDUSTRIES[industry][2])
        base = f"{prefix}{core}"
        style = rng.random()
        domain = base.lower() if style < 0.5 else f"{base}-{suffix}".lower()
        name = f"{prefix}{core} {suffix}" if style >= 0.25 else f"{prefix}{core}"
        count = self.used.get(domain, 0) + 1
        self.used[domain] = count
        if count > 1:
            domain, name = f"{domain}{count}", f"{name} {count}" if style < 0.25 else name
        return f"{domain}.example", name


class _World:
    """Draws accounts, people and what they do; holds only what later leads need."""

    def __init__(self, rng: random.Random, playbook: Playbook, now: datetime, seed: int) -> None:
        self.rng, self.playbook, self.now, self.seed = rng, playbook, now, seed
        self.names = _Names()
        self.accounts: list[_Account] = []
        self.lead_accounts: list[int] = []  # each company lead's account index (preferential attachment)
        self.territory_cum = _cum(list(TERRITORY_WEIGHTS.values()))
        self.territories = list(TERRITORY_WEIGHTS)
        self.country_cum = {t: _cum([w for _, w in cs]) for t, cs in TERRITORIES.items()}
        self.industry_names = list(INDUSTRIES)
        self.industry_cum = _cum([w for w, _, _ in INDUSTRIES.values()])
        self.size_cum = _cum([w for _, _, w, _ in SIZES])
        self.seniorities = list(TITLES)
        self.seniority_cum = _cum([w for w, _, _ in TITLES.values()])
        self.source_names = [s for s, _ in SOURCES]
        self.source_cum = _cum([w for _, w in SOURCES])
        self.free_names = [d for d, _ in FREE_MAIL]
        self.free_cum = _cum([w for _, w in FREE_MAIL])
        self.traits = _TraitChecker(playbook)
        self.domains: set[str] = set()  # company domains of the leads made so far
        self.competitors: dict[str, int] = {}  # competitor domain -> account index

    def _pick(self, names: Sequence[str], cum: Sequence[float]) -> str:
        return names[bisect(cum, self.rng.random() * cum[-1])]

    def _new_account(self, industry: str | None = None, domain: str | None = None, company: str | None = None) -> int:
        rng = self.rng
        industry = industry or self._pick(self.industry_names, self.industry_cum)
        low, high, _, size_quality = SIZES[bisect(self.size_cum, rng.random() * self.size_cum[-1])]
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        territory = self._pick(self.territories, self.territory_cum)
        countries = TERRITORIES[territory]
        country = countries[bisect(self.country_cum[territory], rng.random() * self.country_cum[territory][-1])][0]
        if domain is None:
            domain, company = self.names.company(rng, industry)
        self.accounts.append(_Account(domain, company or domain, industry, size, size_quality, territory, country))
        return len(self.accounts) - 1

    def _account(self) -> _Account:
        """A new company, or (mostly, and more so for big ones) one already in the data."""
        rng = self.rng
        if self.lead_accounts and rng.random() < 0.68:
            index = self.lead_accounts[rng.randrange(len(self.lead_accounts))]
            if self.accounts[index].size >= 50 or rng.random() < 0.35:
                self.lead_accounts.append(index)
                return self.accounts[index]
        index = self._new_account()
        self.lead_accounts.append(index)
        return self.accounts[index]

    def plan(self, number: int) -> tuple[_Plan, list[Event]]:
        """Lead `number`: who it is and every event it produces, oldest first."""
        rng = self.rng
        roll = rng.random()
        persona = "buyer"
        if roll < 0.008:
            persona = "competitor"
        elif roll < 0.02:
            persona = "student"
        elif roll < 0.05:
            persona = "job seeker"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        free_mail = persona == "student" and rng.random() < 0.6 or persona != "student" and rng.random() < 0.12
        if persona == "competitor":
            domain = COMPETITOR_DOMAINS[rng.random() < 0.4]
            if domain not in self.competitors:
                self.competitors[domain] = self._new_account("software", domain, domain.split(".")[0].title())
            account = self.accounts[self.competitors[domain]]
        elif persona == "student":
            account = self.accounts[self._new_account("education")] if not free_mail else None
            if account is not None:
                account.size = max(account.size, 500)  # a university
        elif free_mail and rng.random() < 0.5:
            account = None  # someone on a private address we know nothing of
        else:
            account = self._account()  # (on a private address, half of them still say where they work)
        if account is None or free_mail:
            domain = self._pick(self.free_names, self.free_cum)
        else:
            domain = account.domain
        email = f"{first}.{last}.{number}@{domain}".lower()

        # Who the lead is.
        if persona == "student":
            seniority, title, seniority_quality = "student", rng.choice(STUDENT_TITLES), 0.0
        else:
            seniority = self._pick(self.seniorities, self.seniority_cum)
            if persona == "job seeker":
                seniority = "individual"
            _, seniority_quality, titles = TITLES[seniority]
            title = rng.choice(titles)
        if account is None:  # a free-mail address with no company we know of
            territory = self._pick(self.territories, self.territory_cum)
            cum = self.country_cum[territory]
            country = TERRITORIES[territory][bisect(cum, rng.random() * cum[-1])][0]
            industry, size, size_quality, company = None, None, 0.3, None
            if rng.random() < 0.4:  # some still tell which company they work for
                industry = self._pick(self.industry_names, self.industry_cum)
                company = self.names.company(rng, industry)[1]
        else:
            territory, country, industry = account.territory, account.country, account.industry
            size, size_quality, company = account.size, account.size_quality, account.company
        industry_quality = 0.35 if industry is None else INDUSTRIES[industry][1]
        quality = 0.35 * industry_quality + 0.35 * size_quality + 0.3 * seniority_quality
        if free_mail:
            quality -= 0.15
        if persona != "buyer":
            quality *= 0.2
        quality = min(max(quality, 0.0), 1.0)
        intent = min(rng.betavariate(1.3, 3.6) * (0.55 + 0.9 * quality), 1.0)
        if persona == "competitor":
            intent = max(intent, 0.3)  # they look at pricing a lot
        source = self._pick(self.source_names, self.source_cum)

        fields: dict[str, Any] = {"name": f"{first} {last}", "title": title, "country": country, "territory": territory,
                                  "source": source}
        if company and rng.random() < 0.95:
            fields["company"] = company
        if industry and rng.random() < 0.88:
            fields["industry"] = industry
        if size and rng.random() < 0.8:
            fields["company_size"] = size
        if rng.random() < 0.5:
            fields["product"] = rng.choice(PRODUCTS)
        plan = _Plan(email, quality, intent, fields, anonymous_first=False, demo_request=False)
        return plan, self._events(plan, number, persona, source)

    def _events(self, plan: _Plan, number: int, persona: str, source: str) -> list[Event]:
        rng, now = self.rng, self.now
        intent = plan.intent
        level = round(intent * (INTENT_LEVELS - 1))
        # When: first touch within the last six months, a little more often recently.
        horizon = HISTORY_DAYS * DAY
        start = max(horizon * rng.random() ** 1.15, HOUR)  # seconds before now
        span = min(rng.expovariate(1.0 / ((50 - 30 * intent) * DAY)), start - 60.0)
        span = max(span, 60.0)
        t0 = now - timedelta(seconds=start)
        count = min(max(int(rng.lognormvariate(math.log(7.5) + 1.6 * intent, 0.95)), 1), 600)
        anonymous_first = source in ("organic search", "paid search", "social", "referral", "direct") and rng.random() < 0.7
        visitor = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if anonymous_first or rng.random() < 0.3 else None
        plan.anonymous_first = anonymous_first
        limit = (now - t0).total_seconds() - 1.0  # nothing happens after `now`
        email, prefix = plan.email, message_prefix(self.seed, number)
        events: list[Event] = []
        page_cum = JOB_PAGE_CUM if persona == "job seeker" else PAGE_CUM[level]
        touch_cum = TOUCH_CUM[level]

        def add(offset: float, kind: str, name: str, properties: dict[str, Any], *, known: bool = True,
                web: bool = False, traits: dict[str, Any] = NO_TRAITS) -> Event | None:
            if offset > limit:
                return None  # it would happen after `now`: it has not happened yet
            event = Event(prefix + str(len(events)), kind, name, t0 + timedelta(seconds=offset),
                          email if known else None, None, visitor if web else None, properties, traits)
            events.append(event)
            return event

        def page(offset: float, known: bool = True) -> None:
            kind = PAGE_KINDS[bisect(page_cum, rng.random() * page_cum[-1])]
            add(offset, "page", "page_view", rng.choice(PAGE_PROPS[kind]), known=known, web=True)

        # Sessions: bursts of activity spread over the lead's active span.
        sessions = max(1, round(count / rng.uniform(2.0, 5.0)))
        starts = sorted(span * rng.random() ** 0.8 for _ in range(sessions))
        starts[0] = 0.0
        identified_at = 0.0
        if anonymous_first:  # browsing as an unknown visitor first, a session or more
            anonymous_sessions = max(1, min(sessions - 1, int(sessions * rng.uniform(0.1, 0.5))))
            for session in starts[:anonymous_sessions]:
                for _ in range(1 + int(rng.expovariate(0.5))):
                    page(session + rng.random() * 1200, known=False)
            identified_at = starts[anonymous_sessions] if anonymous_sessions < sessions else span
            starts = starts[anonymous_sessions:] or [identified_at]
        identified_at += 1.0 if anonymous_first else 0.0
        # Becoming known: identify (with who the lead is), then what made it known.
        plan.first = add(identified_at, "identify", "identify", {}, web=visitor is not None,
                         traits=self.traits.check(plan.fields))
        conversion = identified_at + 30 * SECOND
        if source == "webinar":
            add(conversion, "track", "form_submit", FORM_PROPS["webinar registration"])
            if rng.random() < 0.55:
                add(conversion + rng.uniform(1, 14) * DAY, "track", "webinar_attended", rng.choice(WEBINAR_PROPS))
        elif source == "content":
            add(conversion, "track", "form_submit", FORM_PROPS["ebook"])
            add(conversion + 5 * SECOND, "track", "download", rng.choice(DOWNLOAD_PROPS))
        elif source != "event":  # a trade-show list is imported without a form
            form = "contact" if rng.random() < 0.3 + 0.4 * intent else "newsletter"
            add(conversion, "track", "form_submit", FORM_PROPS[form], web=visitor is not None,
                traits=self._form_traits(intent, newsletter=form == "newsletter"))

        # Everything else it does, in sessions.
        remaining = max(count - len(events), 0)
        for touch_index in [bisect(touch_cum, rng.random() * touch_cum[-1]) for _ in range(remaining)]:
            offset = rng.choice(starts) + rng.random() * 1800 + 60
            touch = TOUCHES[touch_index]
            if touch == "page":
                page(offset)
            elif touch == "email_open":
                add(offset, "track", "email_open", rng.choice(OPEN_PROPS))
            elif touch == "email_click":
                add(offset, "track", "email_click", rng.choice(CLICK_PROPS))
            elif touch == "form":
                add(offset, "track", "form_submit", FORM_PROPS[rng.choice(FORMS)], web=visitor is not None,
                    traits=self._form_traits(intent) if rng.random() < 0.5 else NO_TRAITS)
            elif touch == "download":
                add(offset, "track", "download", rng.choice(DOWNLOAD_PROPS))
            else:
                add(offset, "track", "webinar_attended", rng.choice(WEBINAR_PROPS))
        # The strongest signal, late in the journey, from the leads that mean it.
        if persona == "buyer" and rng.random() < 0.5 * intent ** 1.6 * (0.4 + plan.quality):
            plan.demo_request = True
            offset = min(span * rng.uniform(0.5, 1.0) + 120.0, limit)
            page(offset - 60.0)
            add(offset, "track", "demo_request", DEMO_PROPS, web=visitor is not None,
                traits=self._form_traits(intent, demo=True))
        return events

    def _form_traits(self, intent: float, *, demo: bool = False, newsletter: bool = False) -> dict[str, Any]:
        rng = self.rng
        traits: dict[str, Any] = {}
        if newsletter:
            traits["newsletter"] = True
        if demo or rng.random() < 0.6:
            roll = rng.random() - 0.45 * intent + (0.0 if not demo else -0.2)
            traits["timeframe"] = TIMEFRAMES[0 if roll < 0.1 else 1 if roll < 0.35 else 2 if roll < 0.7 else 3]
        if demo or rng.random() < 0.3:
            traits["need"] = rng.choice(NEEDS)
        if demo and rng.random() < 0.5:
            traits["budget"] = int(round(rng.lognormvariate(math.log(20000) + 1.5 * intent, 0.8), -3)) or 1000
        if demo and rng.random() < 0.7:
            traits["phone"] = f"+1 555 01{rng.randrange(100):02d}"
        return self.traits.check(traits)


class _TraitChecker:
    """Traits as the Segment adapter would pass them: only the playbook's fields, each as its type."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.memo: dict[tuple[str, Any], Any] = {}

    def check(self, traits: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        for name, value in traits.items():
            spec = self.playbook.fields.get(name)
            if spec is None:
                continue
            if spec.type == "string" and isinstance(value, str):
                checked[name] = value
                continue
            key = (name, value)
            try:
                coerced = self.memo[key]
            except KeyError:
                try:
                    coerced = spec.coerce(value)
                except DomainError:
                    coerced = None
                self.memo[key] = coerced
            if coerced is not None:
                checked[name] = coerced
        return checked


# --- playing sales ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    delay: Callable[[random.Random, Rep], float]  # seconds until sales decides
    chance: float  # of moving on, for an average lead
    hand_back: float  # share of the others handed back (the rest are disqualified)


STEPS = (  # from the hand-off (MQL) on: accept, qualify, open an opportunity, close
    _Step(lambda r, rep: min(r.lognormvariate(math.log(rep.response_hours * HOUR), 1.2), 20 * DAY), 0.78, 0.6),
    _Step(lambda r, rep: r.uniform(1, 12) * DAY, 0.48, 0.75),
    _Step(lambda r, rep: r.uniform(2, 21) * DAY, 0.6, 0.85),
    _Step(lambda r, rep: r.uniform(14, 100) * DAY, 0.25, 1.0),
)
LATER_STEP = _Step(lambda r, rep: r.uniform(3, 20) * DAY, 0.5, 0.8)


class _Funnel:
    """The playbook's funnel as sales walks it: the next stage, and the ways out, from each stage."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        stages = playbook.stages
        mql_rank = playbook.rank(playbook.mql_stage)
        self.mql_rank = mql_rank if mql_rank >= 0 else 1
        self.next: dict[str, str] = {}
        self.hand_back: dict[str, str] = {}
        self.lost: dict[str, str] = {}
        for stage in stages.values():
            ahead = [m for m in stage.moves if m in stages and stages[m].rank is not None
                     and playbook.rank(m) > playbook.rank(stage.id)]
            if ahead and stage.rank is not None:
                self.next[stage.id] = min(ahead, key=playbook.rank)
            for target in stage.moves:
                spec = stages.get(target)
                if spec is None:
                    continue
                if spec.reasons == "hand_back" and playbook.hand_back_reasons:
                    self.hand_back.setdefault(stage.id, target)
                if spec.outcome == "lost" and spec.reasons in (None, "lost") and spec.rank is None:
                    self.lost.setdefault(stage.id, target)
        self.disqualify = playbook.disqualify_stage if playbook.disqualify_stage in stages else None

    def in_sales(self, lead: Lead) -> bool:
        stage = self.playbook.stages.get(lead.stage)
        return stage is not None and stage.rank is not None and stage.rank >= self.mql_rank and stage.id in self.next


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


HAND_BACK_WEIGHTS = {"not ready": 1.0, "no budget": 0.6, "no authority": 0.5, "no need": 0.6, "bad timing": 0.6,
                     "no response": 0.8}
DISQUALIFY_WEIGHTS = {"not a fit": 0.8, "spam": 0.08, "duplicate": 0.12}  # (the rules catch competitors, students)


class _Sales:
    def __init__(self, rng: random.Random, playbook: Playbook, now: datetime) -> None:
        self.rng, self.playbook, self.now = rng, playbook, now
        self.funnel = _Funnel(playbook)

    def _reason(self, weights: dict[str, float], allowed: tuple[str, ...], boost: dict[str, float]) -> str:
        options = [r for r in allowed if r in weights] or list(allowed)
        values = [weights.get(r, 1.0) * boost.get(r, 1.0) for r in options]
        return self.rng.choices(options, values)[0]

    def work(self, lead: Lead, plan: _Plan | None, rep: Rep) -> list[StageChange]:
        """What sales does with a handed-off lead, from the moment it was handed off until now."""
        rng, playbook, funnel = self.rng, self.playbook, self.funnel
        changes: list[StageChange] = []
        quality = plan.quality if plan else lead.fit / playbook.scoring.fit_max
        intent = plan.intent if plan else 0.3
        fit = lead.fit / playbook.scoring.fit_max
        at = lead.stage_entered_at
        engagement = engagement_at(lead.engagement, playbook.scoring, at) / playbook.scoring.engagement_max
        # How good a prospect it really is; sales wins the good ones far more often.
        score = 0.45 * quality + 0.25 * intent + 0.15 * fit + 0.15 * engagement
        bias = 5.0 * (score - 0.62) + rep.skill
        if plan and plan.demo_request:
            bias += 0.4
        timeframe = lead.fields.get("timeframe")
        if timeframe in ("now", "this quarter"):
            bias += 0.3
        fast_response = False
        while funnel.in_sales(lead):
            step_index = self.playbook.rank(lead.stage) - funnel.mql_rank
            step = STEPS[step_index] if 0 <= step_index < len(STEPS) else LATER_STEP
            delay = step.delay(rng, rep)
            at = lead.stage_entered_at + timedelta(seconds=delay)
            if at >= self.now:
                break  # still being worked
            if step_index == 0 and delay <= HOUR:
                fast_response = True  # answered within the hour: far likelier to qualify
            chance = _sigmoid(_logit(step.chance) + bias + (0.8 if fast_response and step_index > 0 else 0.0))
            if rng.random() < chance:
                changes.append(move(lead, funnel.next[lead.stage], playbook=playbook, at=at, by=rep.email))
                continue
            exit_ = self._exit(lead, step, at, rep, quality, engagement, timeframe)
            if exit_ is not None:
                changes.append(exit_)
            break
        lost = funnel.hand_back.get(lead.stage) if lead.stage in funnel.lost.values() else None
        if lost and rng.random() < 0.3:  # some lost deals go back to nurture for another day
            at = lead.stage_entered_at + timedelta(days=rng.uniform(20, 90))
            if at < self.now:
                reason = self._reason(HAND_BACK_WEIGHTS, playbook.hand_back_reasons,
                                      {"bad timing": 4.0, "no budget": 3.0})
                changes.append(move(lead, lost, playbook=playbook, at=at, by=rep.email, reason=reason))
        return changes

    def _exit(self, lead: Lead, step: _Step, at: datetime, rep: Rep, quality: float, engagement: float,
              timeframe: Any) -> StageChange | None:
        rng, playbook, funnel = self.rng, self.playbook, self.funnel
        lost = funnel.lost.get(lead.stage)
        hand_back = funnel.hand_back.get(lead.stage)
        disqualify = funnel.disqualify if playbook.allows(lead.stage, funnel.disqualify or "") else None
        if lost is not None:
            reason = rng.choice(playbook.lost_reasons) if playbook.lost_reasons else None
            return move(lead, lost, playbook=playbook, at=at, by=rep.email, reason=reason)
        if hand_back is not None and (disqualify is None or rng.random() < step.hand_back):
            fields = lead.fields
            boost = {
                "no budget": 3.0 if (fields.get("company_size") or 0) < 50 else 1.0,
                "no authority": 3.0 if not _is_senior(fields.get("title")) else 0.5,
                "no need": 3.0 if quality < 0.4 else 1.0,
                "bad timing": 3.0 if timeframe in ("this year", "later") else 1.0,
                "no response": 3.0 if engagement < 0.3 else 1.0,
            }
            reason = self._reason(HAND_BACK_WEIGHTS, playbook.hand_back_reasons, boost)
            return move(lead, hand_back, playbook=playbook, at=at, by=rep.email, reason=reason)
        if disqualify is None:
            return None  # the playbook has no way out of this stage: the lead stays
        reason = self._reason(DISQUALIFY_WEIGHTS, playbook.disqualify_reasons, {})
        return move(lead, disqualify, playbook=playbook, at=at, by=rep.email, reason=reason)


_SENIOR_WORDS = ("chief", "vp", "vice president", "head", "director", "founder", "ceo", "cto", "owner")


def _is_senior(title: Any) -> bool:
    text = str(title or "").lower()
    return any(word in text for word in _SENIOR_WORDS)


def rep_for(territory: Any, rng: random.Random) -> Rep:
    """A rep of the team that covers the territory (anyone, for a territory no team covers)."""
    reps = REPS_BY_TERRITORY.get(str(territory)) or DEMO_REPS
    return reps[rng.randrange(len(reps))]


# --- the use case ----------------------------------------------------------------------------


def generate(
    uow_factory: Callable[[], UnitOfWork],
    playbook: Playbook,
    *,
    leads: int,
    seed: int,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Generate `leads` demo leads with their events and sales outcomes into an empty database.

    `progress` is called with the number of leads each finished batch added.
    """
    started = time.perf_counter()
    with uow_factory() as uow:
        existing = uow.leads.count()
    if existing:
        raise DemoNeedsEmptyDatabase(
            f"the demo needs an empty database, and this one already has {existing:,} leads:"
            " point LEADRELAY_DATABASE_URL at a new one (e.g. sqlite:///demo.db)"
        )
    playbook = replace(playbook, automations=(), sla=Sla())  # the past is simulated: no automation or clock for it
    rng = random.Random(seed)
    world = _World(rng, playbook, now, seed)
    sales = _Sales(random.Random(seed + 1), playbook, now)
    stored = 0
    examples: dict[str, str] = {}
    for first in range(0, leads, LEADS_PER_BATCH):
        count = min(LEADS_PER_BATCH, leads - first)
        plans: list[_Plan] = []
        batch: list[Event] = []
        for number in range(first, first + count):
            plan, events = world.plan(number)
            plans.append(plan)
            batch.extend(events)
            # Now and then an unknown visitor who never tells who they are.
            if rng.random() < 0.15:
                batch.extend(_anonymous_visit(rng, now, message_prefix(seed, number) + "v"))
        stored += ingest(uow_factory(), playbook, batch, now).stored
        del batch
        _play_sales(uow_factory, playbook, sales, plans, now, examples)
        for plan in plans:
            domain = company_domain(plan.email)
            if domain:
                world.domains.add(domain)
        if progress:
            progress(count)
    add_content(uow_factory, seed=seed, now=now)

    with uow_factory() as uow:
        current = uow.leads.stage_counts("stage")
        highest = uow.leads.stage_counts("highest_stage")
        total = uow.leads.count()
    reached = {
        stage.id: sum(n for s, n in highest.items() if playbook.rank(s) >= stage.rank)
        for stage in playbook.stages.values()
        if stage.rank is not None
    }
    order = ("customer", "mql", "recycled", "opportunity", "anonymous first", "sal", "lost", "disqualified")
    return DemoSummary(
        leads=total,
        events=stored,
        accounts=len(world.domains),
        seconds=time.perf_counter() - started,
        current=current,
        reached=reached,
        examples=[examples[kind] for kind in order if kind in examples],
    )


def message_prefix(seed: int, number: int) -> str:
    """Message ids of lead `number`: zero-padded, so each batch's ids sort after the ones
    before (the unique index on message ids then grows at one end instead of all over)."""
    return f"demo-{seed}-{number:07d}-"


def _anonymous_visit(rng: random.Random, now: datetime, prefix: str) -> list[Event]:
    visitor = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    start = now - timedelta(seconds=HOUR + (HISTORY_DAYS * DAY - HOUR) * rng.random())  # ends before `now`
    pages = min(1 + int(rng.expovariate(0.6)), 30)
    return [
        Event(prefix + str(k), "page", "page_view", start + timedelta(seconds=40.0 * k), None, None, visitor,
              rng.choice(PAGE_PROPS[PAGE_KINDS[bisect(PAGE_CUM[2], rng.random() * PAGE_CUM[2][-1])]]), NO_TRAITS)
        for k in range(pages)
    ]


def _play_sales(
    uow_factory: Callable[[], UnitOfWork],
    playbook: Playbook,
    sales: _Sales,
    plans: list[_Plan],
    now: datetime,
    examples: dict[str, str],
) -> None:
    """Give each lead of the batch that was handed off a rep, and let the rep work it."""
    by_email = {plan.email: plan for plan in plans}
    # Ingest ties each event to its lead: only leads handed off need loading again.
    tied = [plan.first.lead for plan in plans if plan.first is not None]
    if len(tied) == len(plans):
        wanted = [lead.email for lead in tied if lead is not None and sales.funnel.in_sales(lead)]
    else:  # pragma: no cover - if ingest ever stops tying events to leads, look at every lead
        wanted = list(by_email)
    if not wanted:
        _note_examples(plans, {}, examples)
        return
    with uow_factory() as uow:
        loaded = uow.leads.by_emails(wanted, lock=True)
        handed_off = [loaded[email] for email in wanted if email in loaded and sales.funnel.in_sales(loaded[email])]
        deals = uow.deals.open_for({lead.id: lead for lead in handed_off}, lock=True)  # type: ignore[misc]
        changes: list[StageChange] = []
        queued = []
        for lead in handed_off:
            deal = deals.get(lead.id)  # type: ignore[arg-type]
            rep = REPS_BY_EMAIL.get(deal.owner if deal else lead.owner or "")
            if rep is None:  # waiting in the queue: a manager hands it to the territory's rep
                rep = rep_for(lead.fields.get("territory"), sales.rng)
                if deal is not None:
                    reassign(deal, rep.email, at=lead.stage_entered_at, by="demo:manager")
                    queued.append(deal)
            changes.extend(sales.work(lead, by_email.get(lead.email), rep))
        after_moves(uow, playbook, handed_off, now, deals=deals, reassigned=queued)
        uow.deals.save([deal for deal in queued if deal.dirty], now)
        uow.deals.add_activity(queued)
        uow.leads.save(handed_off, now)
        uow.leads.add_stage_changes(changes)
        uow.commit()
    _note_examples(plans, {lead.email: lead for lead in handed_off}, examples)


def _note_examples(plans: list[_Plan], worked: dict[str, Lead], examples: dict[str, str]) -> None:
    for plan in plans:
        lead = worked.get(plan.email) or (plan.first.lead if plan.first is not None else None)
        if lead is None:
            continue
        kind = lead.stage
        if kind == "customer" and plan.anonymous_first and "anonymous first" not in examples:
            kind = "anonymous first"
        if kind not in examples and lead.email not in examples.values():
            examples[kind] = lead.email


# --- content: the items marketing made, and what the reps shared --------------------------------

DEMO_PAGES = ("/pricing", "/customers/case-studies", "/product/reports", "/blog/speed-to-lead", "/blog/mql-vs-sql")
NEVER_SHARED = ("whitepaper-attribution", "webinar-abm-basics", "/blog/mql-vs-sql", "nurture-3")  # sales never uses these


def add_content(uow_factory: Callable[[], UnitOfWork], *, seed: int, now: datetime) -> int:
    """The demo's content items (its assets, webinars, email campaigns and a few pages), and the
    shares its reps logged: on most deals the owner sends one or two items in the days after the
    hand-off, the better reps more often; a few items nobody ever sends. How many shares."""
    from leadrelay.adapters.content import ContentRepository

    rng = random.Random(seed + 2)
    catalogue = ([("asset", key) for key in ASSETS] + [("webinar", key) for key in WEBINARS]
                 + [("email", key) for key in CAMPAIGNS] + [("page", path) for path in DEMO_PAGES])
    with uow_factory() as uow:
        repo = ContentRepository(uow.connection)
        items = {}
        for kind, key in catalogue:
            title = key.strip("/").replace("-", " ").replace("/", " · ").capitalize()
            items[(kind, key)] = repo.add_item({"kind": kind, "key": key, "title": title, "url": None,
                                                "created_at": now - timedelta(days=HISTORY_DAYS)})["id"]
        shareable = [item_id for (kind, key), item_id in items.items() if key not in NEVER_SHARED and kind != "email"]
        shares = []
        for deal in repo.deals_to_share_with():
            rep = REPS_BY_EMAIL.get(deal.owner or "")
            if rep is None or rng.random() > 0.55 + rep.skill:
                continue
            for _ in range(1 + (rng.random() < 0.35)):
                at = deal.opened_at + timedelta(hours=rng.uniform(2, 24 * 10))
                if at >= (deal.closed_at or now):
                    continue
                shares.append({"item_id": rng.choice(shareable), "lead_id": deal.lead_id, "deal_id": deal.id,
                               "by": rep.email, "at": at, "logged_at": at, "note": None})
        repo.add_shares(shares)
        uow.commit()
    return len(shares)
