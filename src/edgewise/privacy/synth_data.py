"""The word lists and message templates the PII tagger's synthetic data is drawn from (see privacy/synth.py).

Data only: the names' locales for Faker, hard negatives (brands, organisations, places as adjectives, eponyms,
capitalised common words), and the training and held-out templates with their slots.
"""

# Latin-script names from many cultures, plus a few other scripts so they are not all unknown tokens.
NAME_LOCALES = {
    "en_US": 6, "en_GB": 4, "en_IE": 2, "en_AU": 1, "en_IN": 5, "en_PK": 3, "en_NG": 2, "ig_NG": 2, "ha_NG": 2,
    "yo_NG": 2, "zu_ZA": 1, "tw_GH": 1, "sw": 1, "en_KE": 1, "de_DE": 4, "de_AT": 1, "fr_FR": 4, "es_ES": 3,
    "es_MX": 3, "es_AR": 1, "es_CO": 1, "it_IT": 3, "pt_BR": 3, "pt_PT": 1, "nl_NL": 2, "pl_PL": 2, "cs_CZ": 1,
    "sv_SE": 1, "no_NO": 1, "da_DK": 1, "fi_FI": 1, "is_IS": 1, "tr_TR": 2, "az_AZ": 1, "uz_UZ": 1, "ro_RO": 1,
    "hu_HU": 1, "hr_HR": 1, "sk_SK": 1, "lt_LT": 1, "lv_LV": 1, "et_EE": 1, "vi_VN": 3, "id_ID": 2, "fil_PH": 1,
    "ga_IE": 1, "ja_JP": 2, "zh_CN": 3, "ru_RU": 1, "el_GR": 1, "uk_UA": 1,
}
ADDRESS_LOCALES = {
    "en_US": 6, "en_GB": 4, "en_CA": 2, "en_AU": 2, "en_IE": 1, "en_IN": 3, "en_NZ": 1, "de_DE": 3, "de_AT": 1,
    "de_CH": 1, "fr_FR": 3, "fr_CA": 1, "es_ES": 2, "es_MX": 2, "it_IT": 2, "nl_NL": 2, "nl_BE": 1, "pt_BR": 2,
    "pt_PT": 1, "pl_PL": 1, "sv_SE": 1, "da_DK": 1, "no_NO": 1, "fi_FI": 1, "cs_CZ": 1, "ro_RO": 1, "hu_HU": 1,
    "id_ID": 1, "vi_VN": 1,
}
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "BR", "IE", "CH", "SE", "PL", "MX", "ZA",
                 "NG", "KE", "SG", "CA", "JP", "BE", "AT", "PT")
TITLES = ["Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Dr", "Dr.", "Prof.", "Mx.", "Sir", "Madam", "Herr", "Frau",
          "Mme", "M.", "Sr.", "Sra.", "Dott.", "Ing."]

# Hard negatives: capitalised words that are not names, brands and products, places used as adjectives,
# eponyms, and numbers that look like house numbers or phones.
BRANDS = ["iPhone 15 Pro", "Galaxy S24", "Pixel 8", "MacBook Air", "ThinkPad X1", "Surface Pro", "PlayStation 5",
          "Xbox Series X", "Kindle Paperwhite", "AirPods", "Apple Watch", "Tesla Model 3", "Ford Focus",
          "Toyota Corolla", "Honda Civic", "VW Golf", "Microsoft Teams",
          "Google Sheets", "Google Docs", "Slack", "Zoom", "Jira",
          "Confluence", "Salesforce", "HubSpot", "Zendesk", "Notion", "Figma", "Photoshop", "Excel", "PowerPoint",
          "Outlook", "Gmail", "WhatsApp", "Telegram", "Spotify", "Netflix", "Amazon Prime", "Uber Eats", "Airbnb",
          "Dropbox", "GitHub", "GitLab", "Docker", "Kubernetes", "PostgreSQL", "Redis", "Kafka", "TensorFlow",
          "PyTorch", "Nespresso", "Dyson V15", "Nike Air Max", "Adidas Ultraboost", "Lego Technic", "IKEA Billy",
          "Philips Hue", "Sonos One", "Bose QC45", "Canon EOS R6", "Nikon Z6", "GoPro Hero 12", "Fitbit Charge",
          "Garmin Forerunner", "Peloton", "Roomba", "Nintendo Switch", "Steam Deck", "Chromebook", "Windows 11",
          "Ubuntu 22.04", "Android 14", "macOS Sonoma", "Visual Studio Code", "IntelliJ", "Postman", "Tableau",
          "Power BI", "SAP", "Oracle", "Workday", "Shopify", "Stripe", "PayPal", "Revolut", "Wise", "Monzo", "Visa",
          "Mastercard", "American Express", "Coca-Cola", "Heineken", "Starbucks", "McDonald's", "Ben & Jerry's",
          "Johnson & Johnson", "Procter & Gamble", "Rolls-Royce", "Mercedes-Benz", "Harley-Davidson", "Louis Vuitton",
          "Ralph Lauren", "Calvin Klein", "Tommy Hilfiger", "Hugo Boss", "Marks & Spencer", "Dell XPS", "Lenovo Yoga",
          "Jenkins", "Grafana", "Prometheus", "Ansible", "Terraform", "Linear", "Asana", "Trello", "Miro", "Canva"]
# Upper-case abbreviations that sit next to PII ("SSN 536-...", "IBAN DE89...") and are not names.
ACRONYMS = ["SSN", "IBAN", "BIC", "NINO", "NI", "DOB", "HR", "API", "FAQ", "ETA", "PDF", "CEO", "CTO", "CFO",
            "VAT", "NDA", "KPI", "OKR", "ASAP", "FYI", "PS", "NB", "RSVP", "TBD", "EOD", "ID", "PIN", "URL", "SQL",
            "JSON", "CSV", "HTTP", "DNS", "VPN", "SLA", "PO", "RMA", "SKU", "GDPR", "IRS", "DMV",
            "NHS", "EU", "UN", "USA", "UK", "QA", "UX", "UI", "AI", "ML", "GPU", "CPU", "RAM", "SSD", "USB"]
# A capitalised word and a number that are not an address.
WORD_NUMBERS = ["Windows 11", "Boeing 737", "Airbus A320", "Route 66", "Highway 101", "Apollo 11", "Catch 22",
                "Terminal 5", "Gate B12", "Platform 9", "Python 3", "Java 21", "vitamin D3", "Covid 19", "iOS 17",
                "Android 14", "PS5", "Formula 1", "Area 51",
                "Studio 54", "Ocean's 11", "Blink 182", "Maroon 5", "Chanel No. 5", "WD-40", "Heinz 57",
                "Room 101", "Level 3", "Chapter 7", "Section 230", "Article 17", "Form 1040", "Model Y",
                "Series 7", "Pixel 8", "Playstation 5", "Levi's 501", "Audi A4", "BMW X5"]
ORGS = ["Deutsche Bahn", "Tesco", "Carrefour", "Decathlon", "Rakuten", "Alibaba", "Tencent", "Infosys", "Wipro",
        "Safaricom", "MTN", "Jumia", "Naspers", "Petrobras", "Embraer", "Siemens", "Bosch", "Nokia", "Ericsson",
        "Spotify",         "Maersk", "Novo Nordisk", "Unilever", "Nestlé", "Roche", "Toyota", "Samsung", "Hyundai",
        "Tata Consultancy", "Reliance", "Emirates", "Qatar Airways", "Lufthansa", "Ryanair", "KLM", "Air France",
        "MIT", "Stanford", "Oxford University", "ETH Zurich", "Sorbonne", "Mayo Clinic", "Red Cross", "UNICEF"]
CITY_ADJ = ["Paris agreement", "Boston cream pie", "London fog", "Berlin wall", "Swiss cheese", "Texas toast",
            "New York strip", "Brussels sprouts", "Danish pastry", "Turkish coffee", "Greek yogurt", "French press",
            "Dutch oven", "Chicago style", "Hamburg steak", "Frankfurt sausages", "Venetian blinds", "Cuban sandwich",
            "Irish coffee", "Belgian waffles", "Vienna convention", "Geneva conventions", "Kyoto protocol",
            "Oxford comma", "Cambridge analysis", "Manhattan project", "Bordeaux wine", "Parma ham", "Dijon mustard",
            "Bologna process", "Madrid protocol", "Stockholm syndrome", "Lisbon treaty", "Tokyo drift",
            "California roll", "Singapore sling", "Hong Kong style", "Brooklyn accent", "Detroit techno",
            "Seattle grunge", "Nashville sound", "Milan fashion week", "Berlin techno", "Sydney Opera House",
            "Golden Gate Bridge", "Eiffel Tower", "Central Park", "Hyde Park", "Times Square", "Wall Street",
            "Silicon Valley", "Main Street", "Downing Street", "Oxford Street shops", "Baker Street station"]
EPONYMS = ["Fourier transform", "Kalman filter", "Dijkstra's algorithm", "Bayes' theorem", "Newton's method",
           "Alzheimer's disease", "Parkinson's law", "Murphy's law", "Euler's formula", "Gaussian noise",
           "Markov chain", "Turing test", "Pareto principle", "Doppler effect", "Heisenberg's uncertainty",
           "Boolean logic", "Cartesian product", "Levenshtein distance", "Jaccard index", "Hamming code",
           "Petri net", "Monte Carlo", "Nash equilibrium", "Fibonacci sequence", "Pascal's triangle",
           "Adam optimizer", "Xavier init", "Kaplan-Meier curve", "Bonferroni correction", "Wilcoxon test",
           "Student's t-test", "Pearson correlation", "Spearman rank", "Dunning-Kruger effect", "Peter principle",
           "Occam's razor", "Hanlon's razor", "Conway's law", "Brooks's law", "Moore's law", "Amdahl's law"]
CAPWORDS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February",
            "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
            "Christmas", "Easter", "Ramadan", "Diwali", "Thanksgiving", "Budget", "Marketing", "Finance", "Legal",
            "Operations", "Engineering", "Sales", "Support", "Security", "Compliance", "Quarterly Review",
            "Annual Report", "Terms of Service", "Privacy Policy", "Release Notes", "Action Items", "Next Steps",
            "Summary", "Agenda", "Invoice", "Receipt", "Warranty", "Premium", "Gold", "Silver", "Platinum",
            "Enterprise", "Pro", "Basic", "Deluxe", "Express", "Standard", "Priority", "Urgent", "Important",
            "Grace", "Hope", "Faith", "Joy", "Will", "Bill", "Mark", "Rose", "Jasmine", "Summer", "Autumn",
            "Victoria", "Georgia", "Jordan", "Chad", "Florence", "Sydney", "Austin", "Phoenix", "Orlando",
            "Lincoln", "Washington", "Madison", "Victory", "Liberty", "Justice", "Crown", "King", "Queen",
            "Prince", "Bishop", "Baker", "Cook", "Smith Street Market", "English", "Spanish", "German", "French",
            "Chinese", "Japanese", "Hindi", "Arabic", "Python", "Java", "Rust", "Swift", "Go", "Ruby", "Julia",
            "Scala", "Kotlin", "Pandas", "NumPy", "Django", "Flask", "React", "Angular", "Vue", "Node",
            "Kafka Streams", "Apache Spark", "Hadoop", "Mercury", "Venus", "Mars", "Jupiter", "Saturn", "Apollo",
            "Artemis", "Gemini", "Orion", "Atlas", "Titan", "Phoenix Project", "Project Falcon", "Operation Sunrise"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome", "Lisbon", "Amsterdam", "Vienna", "Prague", "Warsaw",
          "Stockholm", "Oslo", "Helsinki", "Dublin", "Edinburgh", "Manchester", "New York", "Chicago", "Toronto",
          "Vancouver", "Sydney", "Melbourne", "Auckland", "Tokyo", "Osaka", "Seoul", "Beijing", "Shanghai",
          "Singapore", "Mumbai", "Delhi", "Bangalore", "Lagos", "Nairobi", "Cairo", "Johannesburg", "Cape Town",
          "São Paulo", "Rio", "Buenos Aires", "Mexico City", "Bogotá", "Lima", "Istanbul", "Dubai", "Tel Aviv",
          "Munich", "Hamburg", "Lyon", "Marseille", "Barcelona", "Valencia", "Milan", "Naples", "Zurich", "Geneva",
          "Brussels", "Copenhagen", "Athens", "Budapest", "Bucharest", "Kraków", "Hanoi", "Jakarta", "Manila"]
COUNTRIES = ["Germany", "France", "Spain", "Italy", "Portugal", "the Netherlands", "Belgium", "Austria",
             "Switzerland", "Poland", "Sweden", "Norway", "Denmark", "Finland", "Ireland", "the UK", "the USA",
             "Canada", "Mexico", "Brazil", "Argentina", "India", "Japan", "China", "Nigeria", "Kenya", "Ghana",
             "South Africa", "Australia", "New Zealand", "Vietnam", "Indonesia", "Turkey", "Egypt"]
TOPICS = ["the Q3 budget", "the onboarding checklist", "our API rate limits", "the database migration",
          "the marketing plan", "the new pricing page", "the flaky integration tests", "the vendor contract",
          "the hiring plan", "the offsite agenda", "the release schedule", "the security audit",
          "a recipe for banana bread", "the difference between TCP and UDP", "how transformers work",
          "the history of the Roman Empire", "quantum entanglement", "a workout plan", "tax deductions",
          "a trip itinerary", "photosynthesis", "the French Revolution", "Docker networking", "unit testing in Python"]


# --- templates -------------------------------------------------------------------------------
# Slots: {P} full name, {F} first name, {L} surname, {T} title + surname (only the surname is PII),
# {A} full postal address, {S} street line, {E} e-mail, {PH} phone, {CC} card, {IB} IBAN, {IP} IPv4,
# {IP6} IPv6, {SSN}, {NINO}; negatives: {ORG} company, {BR} brand/product, {CITY}, {CTRY}, {CADJ} place as
# adjective, {EPO} eponym, {CAP} capitalised word, {ORD} order number, {VER} version, {DATE}, {PRICE},
# {NUM} a count, {TOPIC}. A leading "chat:" marks a template that is sometimes all lower case.

TEMPLATES = [
    # e-mails
    "Hi {F},\n\nThanks for sending over {TOPIC}. I'll review it before {CAP}.\n\nBest,\n{P}",
    "Dear {T},\n\nPlease find attached the invoice {ORD} for {PRICE}. Payment is due on {DATE}.\n\n"
    "Kind regards,\n{P}\n{ORG}",
    "Hello {P},\n\nYour order {ORD} has shipped to:\n{A}\n\nTrack it in the {BR} app.\n\nThe {ORG} team",
    "Hi team,\n\n{P} will join us from {CITY} next {CAP}. Please add them to {BR} and the {CAP} channel.\n\n"
    "Thanks,\n{F}",
    "Good morning {F}, could you forward the {CADJ} notes to {P}? Their address is {E}.",
    "From: {P} <{E}>\nTo: {P}\nSubject: {CAP} update\n\n{F}, the {VER} release is out. "
    "Call me on {PH} if anything breaks.",
    "Dear Sir or Madam,\n\nI am writing to change my billing address to {A}. My account holder is {P}.\n\n"
    "Sincerely,\n{P}",
    "Hey {F},\nquick one: does {ORG} still use {BR}? {P} said they moved to {BR} in {DATE}.\nCheers, {F}",
    "{F} - please send the signed contract to our office at {A} by {DATE}. Thanks! {P}",
    "Hi {F}, I met {P} at the {CITY} conference. They work on {EPO} at {ORG}. Worth an intro?",
    "Regards,\n{P}\nHead of {CAP}, {ORG}\n{A}\nTel: {PH}",
    "Dear {P}, we are pleased to offer you the position of {CAP} Manager at {ORG}, starting {DATE}.",
    "Please update the shipping address for {ORD}: the new one is {S}, {CITY}. Thanks, {F}",
    "Hi {F}, the {BR} you ordered ({ORD}, {PRICE}) will be delivered to {A} on {DATE}.",
    # chats
    "chat:hey is {F} coming to the {CAP} meetup tonight?",
    "chat:can you ask {P} if the {VER} build fixed the crash",
    "chat:lol {F} just spilled {CADJ} all over the {BR}",
    "chat:meet me at {S} around 7, bring {F}",
    "chat:{F} said {L} from accounting approved it",
    "chat:ok so {P} lives at {A}, we can drop the package there",
    "chat:did {F} ever pay you back the {PRICE}?",
    "chat:i'm at {CITY} airport, flight {ORD} delayed again",
    "chat:tell {F} i'll call at {PH} after the {CAP} standup",
    "chat:ngl the new {BR} is way better than the old one",
    "chat:{F} and {F} are driving down from {CITY} on {CAP}",
    "chat:btw my new place is {S}, {CITY} - come by saturday",
    "chat:who's {P}? they keep emailing {E}",
    "chat:we should try that {CADJ} place near {CITY} station",
    # support tickets
    "Ticket {ORD}\nCustomer: {P}\nEmail: {E}\nIssue: {BR} stops syncing after update {VER}.",
    "Customer {P} reports that the delivery to {A} never arrived. Order {ORD}, paid {PRICE}.",
    "Agent note: spoke with {T} on {DATE}. Verified identity with SSN {SSN}. Refund of {PRICE} approved.",
    "Caller {P} ({PH}) wants to cancel the {CAP} plan. Card on file {CC}.",
    "Escalation: {P} at {ORG} cannot log in from {IP}. Ticket {ORD}, priority {CAP}.",
    "Summary of call with {F} {L}: {BR} crashes when exporting to {BR}. Reproduced on {VER}.",
    "User {P} requested a refund to IBAN {IB}. Account manager: {P}.",
    "Return label for {P}, {A}. Item: {BR}, {NUM} units, reason: damaged.",
    "Reported by {P} on {DATE}: the {CADJ} image is missing from the {CAP} page.",
    # forms
    "Name: {P}\nAddress: {A}\nPhone: {PH}\nEmail: {E}",
    "Full name: {P}\nDate of birth: {DATE}\nNational Insurance number: {NINO}\nEmployer: {ORG}",
    "Applicant: {P}\nCurrent address: {A}\nPrevious address: {A}\nSSN: {SSN}",
    "First name: {F}\nLast name: {L}\nStreet: {S}\nCity: {CITY}\nCountry: {CTRY}",
    "Emergency contact: {P}, {PH}. Relationship: {CAP}.",
    "Ship to: {P}\n{A}\nBill to: {ORG}\nPO: {ORD}",
    "Patient: {P}, DOB {DATE}, address {A}, referred by {T}.",
    "Tenant: {P}\nProperty: {A}\nRent: {PRICE} per month from {DATE}",
    # prompts to an assistant
    "Write a short birthday message for my colleague {P}.",
    "Draft a polite reminder to {P} that the rent for {A} is overdue.",
    "Translate into {CAP}: \"{P} will arrive at {S} at noon.\"",
    "Summarise this email from {P}: they want to move the {CAP} meeting to {DATE} and need the {BR} licence.",
    "Write a cover letter for {P}, applying to {ORG} as a {CAP} analyst.",
    "Can you explain the {EPO} to me like I'm five?",
    "Compare the {BR} and the {BR} for a student on a budget of {PRICE}.",
    "Plan a 3-day trip to {CITY} for {F} and me, staying near {S}.",
    "Fix the grammar: {F} and me goes to the {CADJ} shop on {CAP}.",
    "Write a reference letter for {P}, who worked for me at {ORG} from {DATE} to {DATE}.",
    "What does the error in {BR} {VER} mean? It says 'connection refused from {IP}'.",
    "Help me reply to {F}, who asked whether {ORG} ships to {CTRY}.",
    "My neighbour {P} at {A} keeps parking in front of my garage. How do I write a friendly note?",
    "Explain {TOPIC} in three bullet points.",
    "Give me a {CAP} recipe that uses {CADJ}.",
    "Rewrite this for LinkedIn: \"Thrilled to join {ORG} as {CAP} lead, thanks {P}!\"",
    "Book a table for {NUM} under the name {L} at the {CADJ} restaurant on {CAP}.",
    "Generate SQL to find customers named {F} who live on {S}.",
    "{P} (born {DATE}) moved from {CITY} to {A} last year. Draft a change-of-address letter for the bank.",
    # no PII, look-alikes only
    "The {BR} costs {PRICE} and version {VER} adds support for {BR}.",
    "Order {ORD} was placed on {DATE} for {NUM} units of {BR}.",
    "In {DATE}, {ORG} released {BR} {VER} with a new {EPO} implementation.",
    "{CAP}: review the {CADJ} proposal and {TOPIC} before {CAP}.",
    "Please explain {TOPIC}. Use the {EPO} as an example.",
    "Room {NUM}, building {NUM}, floor {NUM}: the {CAP} team moved there on {DATE}.",
    "We sold {NUM} {BR} units in {CITY} and {NUM} in {CITY} last quarter, up {NUM}%.",
    "The {CADJ} exhibit at the {CITY} museum opens {CAP}, tickets {PRICE}.",
    "{CAP} {CAP} at {ORG}: {NUM} open roles in {CITY}, {CTRY}.",
    "Release {VER} fixes ticket {ORD} and bumps {BR} to {VER}.",
    "Line {NUM} of main.py raises KeyError: '{CAP}'. Using {BR} {VER}.",
    "Top {NUM} things to do in {CITY}: the {CADJ}, the old town, and {CAP} market.",
    "{CAP} sale: {BR} now {PRICE}, was {PRICE}. Offer ends {DATE}.",
]
HELDOUT_TEMPLATES = [
    "Hi {F},\n\nJust confirming {P} will pick up the keys for {A} on {DATE}.\n\nThanks again,\n{P}",
    "chat:yo {F} is {P} still at {S}? need to return their {BR}",
    "Incident {ORD}: {P} ({E}) reported login attempts from {IP} and {IP6}.",
    "Customer: {P}\nDelivery address: {A}\nContact: {PH}\nNotes: leave with {CAP} at reception.",
    "Write a thank-you note to {T} for hosting us at {A}.",
    "Please wire {PRICE} to {IB} (beneficiary {P}) before {DATE}.",
    "Driver {P} could not find {S}. Customer phone {PH}, order {ORD}.",
    "Forward to {E}: {P} changed their card to {CC} and their address to {A}.",
    "The {BR} launch in {CITY} on {DATE} sold {NUM} units at {PRICE} each.",
    "Can you summarise {TOPIC}? My teacher {T} says it's on the {CAP} exam.",
    "New hire: {P}, NI number {NINO}, start {DATE}, desk {NUM}, laptop {BR}.",
    "Tax form for {P}: SSN {SSN}, home {A}.",
    "chat:omg {F} moved to {CITY}?? thought they were staying on {S}",
    "Meeting notes ({DATE}): {P} presented the {CADJ} results; {F} owns the {EPO} follow-up.",
    "Version {VER} of {BR} ships {DATE}; see ticket {ORD} and the {CAP} notes.",
]


# Sentence fragments, composed 1-4 at a time: many more contexts than whole templates give.
PERSON_FRAGMENTS = [
    "Please ask {P} to review it.", "I had lunch with {P} today.", "{P} is out of office until {DATE}.",
    "According to {P}, the {BR} rollout is on track.", "Thanks to {P} for the quick fix!", "cc {P}",
    "Can you loop in {F}?", "{F} will take over from {P} next week.", "My manager, {P}, approved the leave.",
    "Our client {P} wants a call.", "I'm {P}, the new {CAP} lead.", "This is {F} from {ORG}.",
    "Talk to {F} or {F} about access.", "{P} and {P} are presenting.", "Sent by {P}", "Best wishes, {F}",
    "Regards, {P}", "Love, {F}", "Signed: {P}", "Attendees: {P}, {P}, {P}", "Owner: {P}", "Reviewer: {F} {L}",
    "Assigned to {P}.", "{T} will see you now.", "Appointment with {T} at 3pm.", "Dear {T},", "Hi {F}!",
    "Hello {F} and {F},", "Good evening {T},", "Congratulations {F}!", "Happy birthday {F}!!",
    "Did {F} reply yet?", "Where is {F}?", "I think {F} knows.", "{F} said no.", "Ask {L} in finance.",
    "The report was written by {P} and edited by {P}.", "Interview with {P} on {DATE}.",
    "{P}, {CAP} Manager at {ORG}", "Contact person: {P}", "Guardian: {P}", "Beneficiary: {P}",
    "Passenger {P}, seat {NUM}A.", "Booking under {L}.", "Reservation for {P}, party of {NUM}.",
    "Patient {P} was seen by {T}.", "Student {P} scored {NUM}/100.", "Driver: {P}", "Tenant {P} pays on time.",
    "The cheque is payable to {P}.", "Give the keys to {F}.", "Please welcome {P} to the team.",
    "{F}'s flight lands at 6.", "I miss {F} so much.", "Our son {F} starts school in {DATE}.",
    "My wife {F} and I", "my brother {F}", "my friend {P}", "my grandmother {P}", "her husband {P}",
    "by {P} ({E})", "Speaker: {P}, {ORG}", "Photo by {P}", "Author: {P}",
]
ADDRESS_FRAGMENTS = [
    "I live at {A}.", "Ship it to {A}.", "Our office moved to {A}.", "The party is at {S}.", "Meet me outside {S}.",
    "Deliver to {A}, ring twice.", "Return address: {A}", "The flat at {A} needs repairs.", "We are moving out of {A}.",
    "Send the documents to {A}.", "Venue: {A}", "Pick-up point: {S}, {CITY}.", "The shop is at {S}.",
    "Registered office: {A}", "Home address: {A}", "Mailing address: {A}", "Billing address:\n{A}",
    "Her new address is {A}.", "They bought a house at {S}.", "The accident happened outside {S}.",
    "Address: {A}", "Lives at {S}", "Correspondence to {A}", "The clinic is at {A}.", "Drop it off at {S}.",
    "Our new place: {A}", "Property address: {A}", "Site visit at {S} on {DATE}.", "The parcel went to {A} by mistake.",
    "my address is {A}", "at {S}", "from {A} to {A}", "near {S}", "Warehouse: {A}",
]
NEGATIVE_FRAGMENTS = [
    "{ACR} {ORD} is pending.", "Please send the {ACR} by {DATE}.", "{ACR}: see {ORD}.", "The {ACR} team approved it.",
    "We moved from {BR} to {BR}.", "She studied at {ORG}.", "He works for {ORG} in {CITY}.", "Fly {ORG} to {CITY}.",
    "I bought it at {ORG}.", "Take {BR} twice a day.", "Watch {BR} tonight.", "{CITY} and {CITY} are {NUM} km apart.",
    "The {CAP} meeting is moved to {DATE}.", "Her {BR} is broken again.", "What is the {EPO}?",
    "This {BR} costs {PRICE}.", "Please explain {TOPIC}.", "We need {NUM} more {BR} licences.",
    "Thanks!", "Cheers.", "See you {CAP}.", "Can you help?", "Any ideas?", "Best regards.", "Kind regards,",
    "The {CADJ} was amazing.", "I ordered the {CADJ}.", "{CAP} is my favourite month.", "Invoice {ORD} is overdue.",
    "Order {ORD} shipped on {DATE}.", "Upgrade to {BR} {VER}.", "The {ORG} deal closed at {PRICE}.",
    "Where can I buy a {BR} in {CITY}?", "Flights to {CITY} are cheap in {CAP}.", "We visited {CITY} and {CITY}.",
    "{CITY} is lovely in {CAP}.", "The {CAP} team shipped {VER}.", "Sprint {NUM} ends {DATE}.",
    "Room {NUM} is booked.", "Gate {NUM} closes at 10:40.", "Platform {NUM}.", "Table {NUM}, please.",
    "The {CAP} plan is {PRICE} per month.", "Our {CAP} office in {CITY} is hiring.", "{ORG} acquired {ORG}.",
    "Use {BR} instead of {BR}.", "It runs on {BR}.", "I love {CADJ}.", "Ticket {ORD} reopened.",
    "Build {VER} failed on {BR}.", "{NUM} users signed up on {DATE}.", "Error {NUM} on line {NUM}.",
    "{CAP}: {TOPIC}.", "Q: {TOPIC}?", "Remember the {EPO}.", "He said it's fine.", "She agreed.",
    "They will call back.", "We'll see.", "It arrived {CAP}.", "Main Street is closed for the parade.",
    "The {CAP} Street Festival starts at noon.", "Take the {NUM} bus to {CITY} Central.",
    "{CTRY} won {NUM}-{NUM}.", "Prices in {CTRY} rose {NUM}%.", "I'm flying to {CTRY} on {DATE}.",
]
