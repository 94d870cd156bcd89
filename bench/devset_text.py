"""Templates of the generated chat development set (see bench.devset_chat): what users say,
what is asked later, and long assistant answers built from topic fragments."""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Maya", "Tomas", "Priya", "Jonah", "Elif", "Marcus", "Ines", "Kenji"]


@dataclass(frozen=True)
class Said:
    name: str
    say: list[str]
    ask: list[str]


@dataclass(frozen=True)
class Attribute:
    name: str
    values: list[str]
    first: list[str]
    change: list[str]
    ask_now: list[str]
    ask_before: list[str]


@dataclass(frozen=True)
class Event:
    name: str
    short: str
    say: list[str]


@dataclass(frozen=True)
class Arc:
    name: str
    steps: list[str]
    ask: list[str]


@dataclass(frozen=True)
class Rec:
    name: str
    topic: str
    request: str
    answer: str
    ask: str


@dataclass(frozen=True)
class Task:
    topic: str
    asks: list[str]


PREFERENCES = [
    Said("minimal dependencies", [
        "Before you write anything: I prefer minimal dependencies, standard library wherever possible.",
        "Small thing about me: I really dislike pulling in extra packages, keep my projects lean."],
        ["When you suggest tools for one of my small scripts, what should you keep in mind?",
         "Would I be happy if you added a big framework to my little utility?"]),
    Said("vegetarian", [
        "Oh and I don't eat meat, I've been vegetarian for years.",
        "Just so you know, no meat for me, I'm vegetarian."],
        ["What kind of dinner recipes should you suggest for me?",
         "Could you plan a barbecue menu I would actually eat from?"]),
    Said("aisle seat", [
        "I always book an aisle seat, I hate climbing over people on long flights.",
        "On planes I'm an aisle person, never the window."],
        ["Where should you try to seat me when you book my flight to Tokyo?",
         "Any seating choice I'd want for the overnight flight?"]),
    Said("morning workouts", [
        "I'm a morning person for exercise, I like to train before 7am.",
        "Workouts work best for me early, right after I wake up."],
        ["When in the day should my training sessions go in the new plan?",
         "What time slot would suit my exercise routine best?"]),
    Said("typescript", [
        "For web stuff I prefer TypeScript over plain JavaScript.",
        "I'd rather use TypeScript than JS whenever there's a choice."],
        ["Which language should the frontend examples be in for me?",
         "If you sketch the browser code for my dashboard, what should it be written in?"]),
    Said("budget travel", [
        "I travel cheap: hostels or simple guesthouses, I'd rather spend on food than on rooms.",
        "I never pay for fancy hotels, a basic clean room is all I need."],
        ["What kind of accommodation should you look for on my Lisbon trip?",
         "Should you pick a five-star resort for my weekend away?"]),
    Said("no cilantro", [
        "I can't stand cilantro, it tastes like soap to me.",
        "Please never put coriander leaves in anything for me, I hate them."],
        ["Is there an herb you should leave out of the salsa recipe for me?",
         "Anything you should swap out in the Thai curry you give me?"]),
    Said("quiet places", [
        "I get overwhelmed in loud crowded places, I like quiet spots.",
        "Noisy bars are not for me, I prefer calm places where you can talk."],
        ["Where should we go for my birthday dinner, what kind of place?",
         "What sort of venue would I enjoy for meeting friends on Friday?"]),
    Said("paper books", [
        "I only read paper books, screens tire my eyes at night.",
        "I'm old school about reading: printed books, never e-readers."],
        ["In what format should you recommend novels to me?",
         "Should I get the Kindle edition of that novel you mentioned?"]),
    Said("dark mode", [
        "I use dark themes everywhere, bright screens give me headaches.",
        "Light mode hurts my eyes, I always switch apps to dark."],
        ["What color scheme should the editor setup you write for me use?",
         "How should you configure the theme of my new terminal?"]),
]

INSTRUCTIONS = [
    Said("syntax highlighting", [
        "From now on, always format code with syntax highlighting, in fenced blocks with the language.",
        "Please always put code in proper highlighted code blocks with the language tag."],
        ["How should you present the Python snippet I'm about to ask for?",
         "Is there a way I asked you to show code to me?"]),
    Said("metric units", [
        "Always give me measurements in metric, grams and celsius, I can't think in cups.",
        "Please use metric units with me from now on, no ounces or fahrenheit."],
        ["How should the quantities in the bread recipe be written for me?",
         "What units should the oven temperature be in when you answer me?"]),
    Said("short answers", [
        "Going forward keep your answers short, a few bullet points, no essays.",
        "Can you stop writing walls of text? Brief bullets from now on please."],
        ["How long should your explanation of the new tax rules be for me?",
         "What style of reply did I ask you for?"]),
    Said("nickname", [
        "By the way, call me Sunny, everyone does, not my full name.",
        "Please address me as Sunny from now on."],
        ["How should you greet me in the morning?",
         "What name do I want you to use for me?"]),
    Said("no emojis", [
        "Please don't use emojis in your replies, it looks unprofessional when I forward them.",
        "No emojis with me from now on, thanks."],
        ["Can you add some smileys to the note for my team?",
         "Is there anything decorative you should avoid in the message you draft for me?"]),
    Said("include tests", [
        "Whenever you write a function for me, add a unit test next to it.",
        "Rule for code from now on: every function comes with a pytest test."],
        ["What else should come along with the parser function you write for me?",
         "Anything I always want attached to the code you give me?"]),
    Said("cite sources", [
        "When you state facts about health, tell me where they come from, I want sources.",
        "Always mention your sources when it's medical or nutrition advice."],
        ["What should accompany your claims about vitamin D for me?",
         "If you explain how much protein I need, what should you include?"]),
]

UPDATES = [
    Attribute("city", ["Denver", "Seattle", "Austin", "Boston", "Lyon", "Toronto"],
              ["It's snowing again here in {v}, typical.", "I live in {v}, so the weekend hikes are close by."],
              ["Big news, we moved to {v} last weekend! Boxes everywhere.",
               "So we left {old}, I'm now settled in {v}."],
              ["Which city am I based in these days?", "Where do I live now?"],
              ["Where did I live before the move?", "Which city was I in at the start of the year?"]),
    Attribute("employer", ["Acme Logistics", "Brightline Health", "Northwind Games", "Helio Bank", "Quillon Labs"],
              ["Work at {v} has been hectic this month.", "I'm a developer at {v}, mostly backend."],
              ["I accepted an offer, I'm starting at {v} next Monday!",
               "Last day at {old} was Friday; I've joined {v} now."],
              ["Who is my current employer?", "Which company do I work for these days?"],
              ["Where was I working before my job change?", "Which company did I leave?"]),
    Attribute("deadline", ["March 14", "April 2", "May 30", "June 12", "July 1"],
              ["The thesis draft is due on {v}, I'm nervous.", "My project deadline is {v}."],
              ["Good news, they pushed my deadline to {v}.", "Deadline changed: it's now {v} instead of {old}."],
              ["When is my deadline now?", "What's the current due date of my project?"],
              ["What was my original due date?", "When was the deadline first set?"]),
    Attribute("car", ["an old Corolla", "a Golf", "a Subaru Outback", "a Mini", "a used Prius"],
              ["My car is {v}, it's reliable but slow.", "I drive {v} to work."],
              ["Finally sold the old one, I'm driving {v} now.", "We replaced {old} with {v} yesterday."],
              ["What do I drive at the moment?", "Which car do I have now?"],
              ["What car did I have before?", "What did I drive earlier this year?"]),
    Attribute("gym", ["Ironworks", "the YMCA", "CoreFit", "Summit Climbing"],
              ["I train at {v} three times a week.", "My gym is {v}, right by the office."],
              ["I cancelled my old membership and signed up at {v}.",
               "Switched gyms: {old} is out, {v} is in."],
              ["Where do I work out now?", "Which gym am I a member of currently?"],
              ["Which gym did I use to go to?", "Where did I train before switching?"]),
    Attribute("diet", ["keto", "intermittent fasting", "the Mediterranean diet", "low sodium"],
              ["I'm doing {v} right now, trying to stick with it.", "Food-wise I follow {v} these days."],
              ["I dropped {old}, I'm trying {v} instead.", "New eating plan: {v} from this week."],
              ["What eating plan am I on now?", "Which diet am I following currently?"],
              ["What diet did I follow before?", "Which eating plan did I drop?"]),
    Attribute("manager", ["Dana", "Rafael", "Mei", "Oskar", "Leila"],
              ["My manager {v} wants weekly reports.", "{v}, my boss, is great at one-on-ones."],
              ["Reorg happened, {v} is my manager now.", "{old} left the team; I report to {v} now."],
              ["Who do I report to now?", "Who is my boss currently?"],
              ["Who was my manager before the reorg?", "Who did I report to earlier?"]),
]

EVENTS = [
    Event("dog", "adopting the dog", ["We adopted a rescue beagle this weekend, she's called Pepper!",
                                      "Guess what, we brought home a puppy from the shelter."]),
    Event("pottery", "the pottery class", ["I signed up for a pottery class on Thursday evenings.",
                                           "Started throwing clay at a pottery studio, so relaxing."]),
    Event("10k", "my first 10k race", ["I ran my first 10k race on Sunday, 58 minutes!",
                                       "Finished my first ever 10k run this morning."]),
    Event("wedding", "my sister's wedding", ["My sister got married on Saturday, what a party.",
                                             "Back from my sister's wedding, I'm exhausted."]),
    Event("wrist", "breaking my wrist", ["I fell off my bike and broke my wrist, typing one-handed.",
                                         "Ugh, fractured wrist, cast for six weeks."]),
    Event("promotion", "my promotion", ["I got promoted to senior engineer today!",
                                        "They gave me the team lead role this week."]),
    Event("japanese", "starting Japanese lessons", ["I began Japanese lessons, hiragana is hard.",
                                                    "Took my first Japanese class online tonight."]),
    Event("lisbon", "the Lisbon trip", ["Just got back from five days in Lisbon, the custard tarts!",
                                        "Lisbon was amazing, we walked everywhere."]),
    Event("concert", "the jazz concert", ["We saw a jazz quartet live last night, incredible drummer.",
                                          "Went to a jazz concert downtown yesterday."]),
    Event("garden", "planting the vegetable garden", ["I planted the raised beds this morning, tomatoes and beans.",
                                                      "Our vegetable garden is finally in the ground."]),
]
ORDER_Q = ["Which happened first, {a} or {b}?", "Did {a} come before or after {b}?",
           "What came earlier for me: {a} or {b}?"]

ARCS = [
    Arc("half marathon", ["I'm thinking of training for a half marathon in the autumn.",
                          "Week four of half marathon training, my knees are complaining.",
                          "Did a 16 km long run today, the half is in three weeks!",
                          "Half marathon done: 2 hours 5 minutes, so happy."],
        ["How has my half marathon training gone overall?", "Summarize my running journey this year."]),
    Arc("kitchen", ["We're planning to redo the kitchen, the cabinets are falling apart.",
                    "Kitchen update: contractor starts demolition next week.",
                    "The new countertops are in, quartz, looks great.",
                    "Kitchen is finished, we cooked our first dinner in it."],
        ["What's the story of our kitchen renovation so far?", "Recap how the kitchen remodel went."]),
    Arc("guitar", ["I bought a second-hand acoustic guitar, time to learn.",
                   "My fingertips hurt from practising chords every night.",
                   "I can play the whole of Wonderwall now, slowly.",
                   "Played guitar at a friend's open mic, terrified but fun."],
        ["How is my guitar learning coming along?", "Give me a recap of my progress with music."]),
    Arc("job search", ["I've started looking for a new job, updating the CV.",
                       "Had two phone screens this week, one went well.",
                       "Final round interview on Tuesday, a system design exercise.",
                       "I got the offer from the fintech company!"],
        ["How did my job hunt go, from start to finish?", "Summarize my search for a new position."]),
]

FACTS = [
    Said("peanuts", ["Careful with recipes for me, I'm allergic to peanuts.",
                     "I have a peanut allergy, a bad one."],
         ["What ingredient must never be in the snacks you suggest for me?",
          "Is there a food I react badly to?"]),
    Said("daughter", ["My daughter Lina starts school in September.",
                      "Lina, my little girl, drew us all today."],
         ["What's my kid's name?", "Who is starting school this autumn in my family?"]),
    Said("night shifts", ["I work night shifts at the hospital, so I sleep during the day.",
                          "My shifts are at night, 10pm to 6am."],
         ["When do I usually sleep?", "What hours am I at work?"]),
    Said("cat", ["Our cat Miso knocked my coffee over again.", "Miso the cat is sleeping on my keyboard."],
         ["What is my pet called?", "What's the name of the animal that lives with me?"]),
    Said("birthday", ["My birthday is on the 9th of November, I'm turning 35.",
                      "I'll be 35 on November 9th."],
         ["When is my birthday?", "How old am I turning this year?"]),
    Said("standing desk", ["I work from home at a standing desk in the attic.",
                           "My home office is in the attic, with a standing desk."],
         ["Where is my workspace at home?", "What does my home office look like?"]),
    Said("band", ["Radiohead is my favourite band, I've seen them four times.",
                  "Nothing beats Radiohead for me."],
         ["Which group do I love listening to most?", "Who is my favourite musical act?"]),
    Said("languages", ["I grew up speaking Portuguese and German at home.",
                       "At home we spoke Portuguese and German."],
         ["Which languages did I speak as a child?", "What are my native languages?"]),
]

RECOMMENDATIONS = [
    Rec("rust book", "code", "What should I read to learn Rust properly?",
        "My top pick is \"The Rust Programming Language\" (the book by Klabnik and Nichols), then Rustlings exercises.",
        "Which resource did you suggest first for learning Rust?"),
    Rec("budget app", "budget", "Is there an app you'd recommend for tracking spending?",
        "I'd go with YNAB (You Need A Budget) for its envelope method; a spreadsheet works too.",
        "What did you recommend I use to track my money?"),
    Rec("tomato", "garden", "Which tomato variety should I grow on a balcony?",
        "For a balcony, 'Tumbling Tom' is a great cherry tomato for pots and hanging baskets.",
        "Which tomato did you tell me to plant?"),
    Rec("logging", "code", "What's a good way to do logging in my Python service?",
        "Use structlog for structured JSON logs, configured once at startup.",
        "Which logging library did you propose for my service?"),
    Rec("hike", "travel", "Any day hike you'd suggest near Chamonix?",
        "Do the Lac Blanc trail from La Flégère: about 3 hours up, with views of Mont Blanc.",
        "What hike did you suggest for the Alps?"),
    Rec("sourdough", "cooking", "My sourdough comes out flat, what should I change?",
        "The main fix is a longer cold retard: proof the shaped loaf overnight in the fridge.",
        "What was your main tip for my flat bread?"),
]

TASKS = [
    Task("code", ["Can you write a Python function that deduplicates a list of dicts by a key?",
                  "How do I parse a CSV file and sum one column in Python?",
                  "Write me a bash script that backs up a folder every night.",
                  "Why is my async function never awaited? Here's the error: coroutine was never awaited.",
                  "Show me a SQL query for monthly revenue totals per customer.",
                  "How do I read environment variables safely in a Node app?"]),
    Task("cooking", ["What can I cook tonight with chickpeas, spinach and rice?",
                     "Give me a weekly meal prep plan for lunches.",
                     "How do I make a simple tomato soup?"]),
    Task("travel", ["Help me plan three days in Porto.", "What should I pack for a week of hiking?",
                    "How do I get from the airport to the city centre cheaply in Rome?"]),
    Task("fitness", ["Can you make me a beginner strength routine?", "How should I stretch after running?",
                     "What's a good plan to improve my push-ups?"]),
    Task("budget", ["Help me set up a monthly budget.", "How much should I keep in an emergency fund?",
                    "How do I compare two savings accounts?"]),
    Task("writing", ["Can you help me write a polite email declining a meeting?",
                     "Proofread my cover letter opening for me?", "Draft a short toast for a friend's birthday."]),
    Task("garden", ["When should I prune my apple tree?", "How often do I water succulents?",
                    "What grows well in partial shade?"]),
    Task("career", ["How do I prepare for a salary negotiation?", "Tips for my first week managing people?",
                    "How do I write a good self-review?"]),
]

GREETINGS = ["Hi!", "Hey, got a minute?", "Good morning.", "Hello again.", "Hey there.", "Hi, quick questions today."]
GREETING_REPLIES = ["Hi! What can I help you with today?", "Of course, what's up?",
                    "Good to see you again. What are we working on?", "Hello! Ready when you are."]
ACKS = ["Noted, thanks for telling me.", "Good to know, I'll keep that in mind.",
        "Got it.", "Thanks for letting me know!", "That's great to hear.", "Understood."]
FOLLOWUPS = ["Can you go into more detail on the second point?", "Thanks. What would you change for a beginner?",
             "Could you make that shorter?", "And what are common mistakes here?"]
GOODBYES = ["Thanks, that's all for today.", "Perfect, talk later.", "Great, bye!", "Thanks a lot."]

_INTROS = {
    "code": ["Sure, here's a clean way to do it.", "Good question; the usual approach looks like this.",
             "Here's a version that handles the edge cases."],
    "cooking": ["Here's a simple plan that works on a weeknight.", "Happy to help, here's what I'd do."],
    "travel": ["Here's a practical itinerary.", "Here's how I'd approach it."],
    "fitness": ["Here's a plan you can start this week.", "Let's keep it simple and progressive."],
    "budget": ["Here's a straightforward structure.", "A few principles first, then the numbers."],
    "writing": ["Here's a draft you can adapt.", "Here's a version with a friendly but clear tone."],
    "garden": ["It depends a bit on your climate, but generally:", "Here's the short version."],
    "career": ["Here's how I'd prepare.", "A few things that make a real difference:"],
}
_POINTS = {
    "code": ["Validate the input early and raise a clear error.", "Keep the function pure so it's easy to test.",
             "Use a dictionary keyed by the field to drop repeats in one pass.",
             "Prefer pathlib over os.path for file handling.", "Log at debug level inside loops, not info.",
             "Pin versions in a lock file so builds are reproducible.", "Handle the empty case explicitly.",
             "Add type hints; mypy will catch the None cases.", "Wrap network calls with a timeout."],
    "cooking": ["Rinse the rice until the water runs clear.", "Toast the spices in oil for a minute first.",
                "Season at the end, tasting as you go.", "Batch-cook grains on Sunday.",
                "A squeeze of lemon brightens almost any stew.", "Keep a jar of pickled onions for quick toppings.",
                "Roast vegetables at a high heat so they caramelize.", "Store soups in portions and freeze them."],
    "travel": ["Book the first morning slot for the popular sights.", "Get a transit day pass.",
               "Pack layers rather than one heavy jacket.", "Keep a paper copy of your passport.",
               "Leave one afternoon unplanned.", "Eat where the locals queue at lunch.",
               "Download offline maps before you leave.", "Check opening days; many museums close Mondays."],
    "fitness": ["Warm up for five to ten minutes.", "Progress slowly: add reps before weight.",
                "Three sessions a week is plenty to start.", "Sleep matters as much as the training.",
                "Keep a simple log of sets and reps.", "Take a deload week every six weeks.",
                "Focus on form before speed.", "Hydrate and eat some protein after training."],
    "budget": ["List fixed costs first: rent, utilities, insurance.", "Automate savings on payday.",
               "Aim for three to six months of expenses as a buffer.", "Review subscriptions every quarter.",
               "Use separate accounts for bills and spending.", "Track every expense for one month to see the truth.",
               "Compare the effective annual rate, not the headline.", "Pay off the highest-interest debt first."],
    "writing": ["Open with the point, then the reason.", "Keep sentences short.", "Thank them for the invitation.",
                "Offer an alternative if you can.", "End with a warm, clear closing.",
                "Cut adjectives that don't add meaning.", "Read it out loud once before sending."],
    "garden": ["Prune in late winter while the tree is dormant.", "Water deeply but rarely.",
               "Use a free-draining soil mix.", "Mulch to keep moisture in.", "Hostas and ferns love shade.",
               "Rotate crops each year.", "Feed with compost in spring."],
    "career": ["Know your market range before the conversation.", "Write down your achievements with numbers.",
               "Ask open questions and listen more than you talk.", "Set up regular one-on-ones.",
               "Be specific about impact in your self-review.", "Practise the answer to 'why are you leaving'."],
}
_CODE = [
    "```python\ndef dedupe(rows, key):\n    seen = {}\n    for row in rows:\n        seen.setdefault(row[key], row)\n"
    "    return list(seen.values())\n```",
    "```python\nimport csv\nfrom pathlib import Path\n\ndef total(path: Path, column: str) -> float:\n"
    "    with path.open(newline='') as f:\n        return sum(float(r[column]) for r in csv.DictReader(f))\n```",
    "```bash\n#!/usr/bin/env bash\nset -euo pipefail\nsrc=\"$HOME/Documents\"\ndest=\"/mnt/backup/$(date +%F)\"\n"
    "rsync -a --delete \"$src/\" \"$dest/\"\n```",
    "```sql\nSELECT customer_id, date_trunc('month', paid_at) AS month, SUM(amount) AS revenue\n"
    "FROM payments\nGROUP BY customer_id, month\nORDER BY month, revenue DESC;\n```",
    "```python\nimport asyncio\n\nasync def main() -> None:\n    result = await fetch_all()\n    print(result)\n\n"
    "asyncio.run(main())\n```",
    "```javascript\nconst port = Number(process.env.PORT ?? 3000);\nif (!process.env.API_KEY) {\n"
    "  throw new Error('API_KEY is required');\n}\n```",
]
_CLOSINGS = ["Let me know if you want me to adapt it.", "Want me to go further on any of these?",
             "That should get you started.", "Happy to adjust it to your situation.", ""]


def long_answer(rng: random.Random, topic: str, *, lead: str | None = None, short: bool = False) -> str:
    """A long assistant answer: intro, optional lead sentence, a numbered list and, for code,
    a fenced block; 3-4 points when ``short``, else 4-8."""
    points = rng.sample(_POINTS[topic], min(len(_POINTS[topic]), rng.randint(3, 4) if short else rng.randint(4, 8)))
    parts = [rng.choice(_INTROS[topic])]
    if lead:
        parts.append(lead)
    if topic == "code":
        parts.append(rng.choice(_CODE))
    parts.append("\n".join(f"{n}. {p}" for n, p in enumerate(points, 1)))
    closing = rng.choice(_CLOSINGS)
    return "\n\n".join(parts + ([closing] if closing else []))
